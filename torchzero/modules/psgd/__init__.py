"""Preconditioned stochastic gradient descent (Li, 2015, arXiv:1512.04202; Li, 2024, arXiv:2402.11858):
preconditioners fitted online on matrix Lie groups, Kronecker-factored (Kron), diagonal plus low rank
(LRA) or dense, either whitening the gradients or fitted to Hessian-vector products (Newton)."""
from .dense import PSGDDenseNewton
from .kron import PSGDKronNewton, PSGDKronWhiten
from .lra import PSGDLRANewton, PSGDLRAWhiten

__all__ = ["PSGDDenseNewton", "PSGDKronNewton", "PSGDKronWhiten", "PSGDLRANewton", "PSGDLRAWhiten"]
