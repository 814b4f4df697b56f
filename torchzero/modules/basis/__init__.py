"""Optimizers run in a rotated basis: the eigenbases of Shampoo's Kronecker factors (SOAPBasis)."""
from .soap_basis import SOAPBasis

__all__ = ["SOAPBasis"]
