"""Adaptive (diagonally preconditioned) methods."""
from .adam import Adam

__all__ = ["Adam"]
