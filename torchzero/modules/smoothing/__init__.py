"""Smoothing of the update."""
from .laplacian import LaplacianSmoothing

__all__ = ["LaplacianSmoothing"]
