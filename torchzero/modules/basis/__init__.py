"""Optimizers run in a rotated basis: the eigenbases of Shampoo's Kronecker factors (SOAPBasis) and
the basis GGT builds from a window of recent gradients (GGTBasis)."""
from .ggt_basis import GGTBasis
from .soap_basis import SOAPBasis

__all__ = ["GGTBasis", "SOAPBasis"]
