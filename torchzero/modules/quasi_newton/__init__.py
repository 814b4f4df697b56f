"""Quasi-Newton methods: full-matrix and diagonal Hessian approximations, limited-memory methods."""
# -- limited-memory methods (lbfgs.py, lsr1.py) --
from .lbfgs import LBFGS
from .lsr1 import LSR1

# -- full-matrix and diagonal quasi-Newton (issue 8) --
from .base import HessianUpdateStrategy
from .quasi_newton import (
    BFGS, DFP, ICUM, PSB, SR1, BroydenBad, BroydenGood, FletcherVMM, Greenstadt1, Greenstadt2, Horisho, McCormick,
    Pearson, ProjectedNewtonRaphson, ShorR, ThomasOptimalMethod,
)
from .diagonal_quasi_newton import (
    DNRTR, DiagonalBFGS, DiagonalQuasiCauchi, DiagonalSR1, DiagonalWeightedQuasiCauchi, NewDQN,
)
from .gradient_correction import GradientCorrection
from .self_scaling import SSVM, NewSSM
from .sg2 import SG2

__all__ = [
    # -- limited-memory methods --
    "LBFGS", "LSR1",
    # -- full-matrix and diagonal quasi-Newton (issue 8) --
    "HessianUpdateStrategy", "BFGS", "DFP", "SR1", "BroydenGood", "BroydenBad", "Greenstadt1", "Greenstadt2",
    "McCormick", "Pearson", "ICUM", "ThomasOptimalMethod", "Horisho", "FletcherVMM", "PSB", "ShorR",
    "ProjectedNewtonRaphson", "DiagonalBFGS", "DiagonalSR1", "DiagonalQuasiCauchi", "DiagonalWeightedQuasiCauchi",
    "DNRTR", "NewDQN", "GradientCorrection", "SSVM", "NewSSM",
    "SG2",
]
