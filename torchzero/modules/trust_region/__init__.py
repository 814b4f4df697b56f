"""Trust-region methods: a Hessian approximation from a child module, steps accepted or rejected
by comparing the actual with the predicted reduction of the loss."""
from .cubic_regularization import CubicRegularization
from .dogleg import Dogleg
from .levenberg_marquardt import LevenbergMarquardt
from .trust_cg import TrustCG
from .trust_region import TrustRegionBase

__all__ = ["TrustRegionBase", "LevenbergMarquardt", "Dogleg", "TrustCG", "CubicRegularization"]
