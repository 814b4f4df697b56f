"""Step sizes and learning rates."""
from .adaptive import AdGD, BarzilaiBorwein, BBStab, BoldDriver, PolyakStepSize
from .lr import LR, StepSize
from .schedules import RandomStepSize, Warmup, WarmupNormClip

__all__ = [
    "AdGD", "BBStab", "BarzilaiBorwein", "BoldDriver", "LR", "PolyakStepSize", "RandomStepSize", "StepSize", "Warmup",
    "WarmupNormClip",
]
