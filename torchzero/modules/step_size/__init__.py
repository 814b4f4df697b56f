"""Step sizes and learning rates."""
from .lr import LR, StepSize

__all__ = ["LR", "StepSize"]
