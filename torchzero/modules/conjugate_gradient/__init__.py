"""Nonlinear conjugate gradient methods (and Pearson's projected gradient method)."""
from .cg import (
    DYHS, ConjugateDescent, ConjugateGradientBase, DaiYuan, FletcherReeves, HagerZhang, HestenesStiefel, LiuStorey,
    PolakRibiere, ProjectedGradientMethod,
)

__all__ = [
    "ConjugateGradientBase", "ConjugateDescent", "DYHS", "DaiYuan", "FletcherReeves", "HagerZhang", "HestenesStiefel",
    "LiuStorey", "PolakRibiere", "ProjectedGradientMethod",
]
