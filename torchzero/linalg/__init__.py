"""Linear algebra helpers: linear operators returned by ``Module.get_H``."""
from .linear_operator import BlockDiagonal, Dense, DenseInverse, Diagonal, LinearOperator, ScaledIdentity

__all__ = ["LinearOperator", "Dense", "DenseInverse", "Diagonal", "ScaledIdentity", "BlockDiagonal"]
