"""Matrix preconditioners: orthogonalized updates (Muon), Kronecker-factored (Shampoo, SOAP) and
full-matrix (FullMatrixAdagrad, GGT) adaptive methods."""
from .full_matrix_adagrad import FullMatrixAdagrad
from .ggt import GGT
from .matrix_momentum import MatrixMomentum
from .natural_gradient import NaturalGradient
from .muon import DualNormCorrection, MuonAdjustLR, Orthogonalize
from .shampoo import Shampoo
from .soap import SOAP

__all__ = ["DualNormCorrection", "FullMatrixAdagrad", "GGT", "MatrixMomentum", "MuonAdjustLR", "NaturalGradient", "Orthogonalize", "SOAP", "Shampoo"]
