"""Variance reduction: SVRG."""
from .svrg import SVRG

__all__ = ["SVRG"]
