"""Gradient approximations from function values (finite differences, SPSA, smoothing...)."""
from .base import ApproximatedClosure, GradApproximator
from .fdm import FDM
from .forward_gradient import ForwardGradient
from .rfdm import MeZO, RDSA, GaussianSmoothing, RandomizedFDM, SPSA
from .spsa1 import SPSA1

__all__ = ["GradApproximator", "FDM", "RandomizedFDM", "SPSA", "SPSA1", "RDSA", "GaussianSmoothing", "MeZO",
           "ForwardGradient"]
