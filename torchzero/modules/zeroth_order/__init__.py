"""Zeroth-order methods that propose their own steps from function values."""
from .cd import CD
from .sampling import GradientSampling

__all__ = ["CD", "GradientSampling"]
