"""Least squares: the closure returns residuals, the loss is their sum of squares."""
from .gn import GaussNewton, SumOfSquares

__all__ = ["GaussNewton", "SumOfSquares"]
