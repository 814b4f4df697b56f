"""Perturbations of weights, closures and updates: noise, DropConnect, dropout, re-initialization, escapes."""
from .escape import EscapeAnnealing
from .regularization import Dropout, PerturbWeights, WeightDropout
from .reinit import RandomReinitialize

__all__ = ["PerturbWeights", "WeightDropout", "Dropout", "RandomReinitialize", "EscapeAnnealing"]
