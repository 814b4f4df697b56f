"""Second-order methods: Newton's method and its variants (exact, Newton-CG, multipoint, sketched)."""
from .improved_newton import ImprovedNewton
from .multipoint import HigherOrderMethodBase, SixthOrder3P, SixthOrder3PM2, SixthOrder5P, TwoPointNewton
from .newton import InverseFreeNewton, Newton
from .newton_cg import NewtonCG, NewtonCGSteihaug
from .nystrom import NystromPCG, NystromSketchAndSolve
from .subspace_newton import SubspaceNewton

__all__ = ["Newton", "InverseFreeNewton", "TwoPointNewton", "SixthOrder3P", "SixthOrder3PM2", "SixthOrder5P", "ImprovedNewton", "NewtonCG", "NewtonCGSteihaug", "SubspaceNewton", "NystromSketchAndSolve", "NystromPCG"]
