"""Levenberg-Marquardt: a trust region enforced by damping the Hessian approximation."""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...linalg import DenseInverse, LinearOperator
from .trust_region import TrustRegionBase, _RadiusStrategy


def is_inverse_operator(H: LinearOperator) -> bool:
    """Whether ``H`` holds ``B^-1`` rather than ``B`` (forming ``B + D`` then needs an inversion)."""
    return isinstance(H, DenseInverse) or bool(getattr(H, "stores_inverse", False))


class LevenbergMarquardt(TrustRegionBase):
    """Levenberg-Marquardt trust region (Levenberg, 1944, "A method for the solution of certain
    non-linear problems in least squares", Quart. Appl. Math. 2(2); Marquardt, 1963, "An algorithm
    for least-squares estimation of nonlinear parameters", SIAM J. Appl. Math. 11(2),
    doi:10.1137/0111030).

    Instead of bounding the step, the radius ``r`` damps the Hessian approximation ``B``::

        d = (B + lambda D)^-1 g,   lambda = 1 / r,   D = (1 - y) I + y diag(B)

    A small radius gives a short step along ``-g``; a large one approaches the (quasi-)Newton
    step. ``y = 1`` is Marquardt's scaling by the diagonal (meant for Gauss-Newton). With
    ``adaptive``, ``lambda = sqrt(||g||) / r``: the damping is tied to the gradient norm and fades as
    the gradient vanishes (Yamashita & Fukushima, 2001, "On the rate of convergence of the Levenberg-Marquardt
    method", Computing Suppl. 15, doi:10.1007/978-3-7091-6217-0_18). The radius is adapted from
    the ratio of actual to predicted reduction as described in :class:`TrustRegionBase`.

    Args:
        hess_module: module maintaining the Hessian approximation (not its inverse): full-matrix
            quasi-Newton methods with ``inverse=False``, ``Newton``, ``GaussNewton``...
        eta: a step is accepted when the reduction ratio exceeds this.
        nplus: radius growth factor on good steps.
        nminus: radius shrink factor on bad steps.
        rho_good: reduction ratio above which the radius grows.
        rho_bad: reduction ratio below which the radius shrinks.
        init: initial radius.
        max_attempts: trial steps per step before a zero update is returned.
        radius_strategy: ``"default"``, ``"fixed"`` or a callable (see :class:`TrustRegionBase`).
        y: interpolates the damping matrix between the identity (0) and ``diag(B)`` (1).
        adaptive: scale the damping ``1 / r`` by the square root of the gradient norm.
        fallback: when ``hess_module`` keeps the inverse ``B^-1`` (e.g. ``BFGS()`` with the default
            ``inverse=True``), invert it anyway instead of raising ``RuntimeError``.
        update_freq: update ``hess_module`` every this many steps.
        inner: module(s) whose output replaces the gradient.

    Example:
        ``tz.Optimizer(params, tz.m.LevenbergMarquardt(tz.m.SR1(inverse=False)))``
    """

    def __init__(self, hess_module: Chainable, eta: float = 0.0, nplus: float = 3.5, nminus: float = 0.25,
                 rho_good: float = 0.99, rho_bad: float = 1e-4, init: float = 1, max_attempts: int = 10,
                 radius_strategy: _RadiusStrategy | Literal["default", "fixed"] = "default", y: float = 0,
                 adaptive: bool = False, fallback: bool = False, update_freq: int = 1, inner: Chainable | None = None):
        super().__init__(dict(y=y, adaptive=adaptive, fallback=fallback), hess_module=hess_module, eta=eta,
                         nplus=nplus, nminus=nminus, rho_good=rho_good, rho_bad=rho_bad, boundary_tol=None, init=init,
                         max_attempts=max_attempts, radius_strategy=radius_strategy, radius_fn=None,
                         update_freq=update_freq, inner=inner)

    def trust_region_apply(self, objective, tensors, H):
        if H is not None and is_inverse_operator(H) and not self.settings[objective.params[0]]["fallback"]:
            raise RuntimeError(
                f"{type(self).__name__}: {self.children['hess_module']!r} keeps the inverse Hessian, and damping "
                "needs the Hessian itself. Construct the quasi-Newton module with inverse=False, or pass fallback=True "
                "to invert it (slow and less stable).")
        return super().trust_region_apply(objective, tensors, H)

    def trust_solve(self, f: float, g: torch.Tensor, H: LinearOperator, radius: float, params: list[torch.Tensor],
                    closure: Callable, settings: Mapping[str, Any]) -> torch.Tensor:
        lam = 1.0 / radius
        if settings["adaptive"]:
            lam = lam * math.sqrt(float(g.norm()))
        if not math.isfinite(lam):
            return torch.zeros_like(g)
        y = settings["y"]
        if y == 0:
            return H.solve_plus_diag(g, lam)
        diag = H.diagonal()
        return H.solve_plus_diag(g, lam * ((1 - y) + y * diag))
