"""Accumulation of gradients over several steps."""
from .gradient_accumulation import GradientAccumulation

__all__ = ["GradientAccumulation"]
