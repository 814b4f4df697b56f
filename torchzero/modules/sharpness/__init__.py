"""Sharpness-aware minimization: SAM, ASAM, Momentum-SAM."""
from .msam import MSAM, MSAMMomentum
from .sam import ASAM, SAM

__all__ = ["SAM", "ASAM", "MSAM", "MSAMMomentum"]
