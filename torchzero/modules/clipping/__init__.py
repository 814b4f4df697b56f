"""Clipping, normalization and centralization of the update."""
from .clipping import Centralize, ClipNorm, ClipValue, Normalize
from .ema_clipping import ClipNormByEMA, ClipValueByEMA, NormalizeByEMA
from .growth_clipping import ClipNormGrowth, ClipValueGrowth

__all__ = [
    "Centralize", "ClipNorm", "ClipValue", "Normalize", "ClipNormByEMA", "ClipValueByEMA", "NormalizeByEMA",
    "ClipNormGrowth", "ClipValueGrowth",
]
