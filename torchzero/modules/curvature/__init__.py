"""Curvature-based adaptive methods: Adam / Adagrad-like preconditioners built from Hutchinson
estimates of the Hessian diagonal (AdaHessian, SophiaH, ESGD)."""
from .adahessian import AdaHessian
from .esgd import ESGD
from .sophia_h import SophiaH

__all__ = ["AdaHessian", "ESGD", "SophiaH"]
