"""Trust region by the Steihaug-Toint conjugate gradient method."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...linalg import LinearOperator
from ._solvers import exact_diagonal_step, steihaug_cg
from .trust_region import TrustRegionBase, _RadiusStrategy


class TrustCG(TrustRegionBase):
    """Trust region whose subproblem is solved by Steihaug-Toint conjugate gradient (Steihaug, 1983,
    "The conjugate gradient method and trust regions in large scale optimization", SIAM J. Numer.
    Anal. 20(3), doi:10.1137/0720042; Toint, 1981, "Towards an efficient sparsity exploiting Newton
    method for minimization").

    CG is run on ``(B + reg I) d = g`` from ``d = 0`` and stopped where the iterates leave the ball
    of radius ``r`` or meet non-positive curvature (the step then ends on the boundary), or when the
    residual is below ``cg_tol ||g||`` after at least ``miniter`` iterations, or after ``maxiter``
    iterations (default: the number of variables). Only products ``B v`` are needed. With
    ``prefer_exact`` and ``B`` a positive multiple of the identity the bounded minimiser is computed
    directly. The radius is adapted as described in :class:`TrustRegionBase`; by default it grows
    only when the step reached the boundary (``boundary_tol``).

    Args:
        hess_module: module maintaining the Hessian approximation (quasi-Newton methods with
            ``inverse=False``, ``Newton``...). For exact Hessians the matrix-free ``NewtonCGSteihaug``
            is usually cheaper.
        eta: a step is accepted when the reduction ratio exceeds this.
        nplus: radius growth factor on good steps.
        nminus: radius shrink factor on bad steps.
        rho_good: reduction ratio above which the radius grows.
        rho_bad: reduction ratio below which the radius shrinks.
        boundary_tol: the radius grows only when the step norm is at least ``(1 - boundary_tol) r``
            (None: regardless of the step norm).
        init: initial radius.
        max_attempts: trial steps per step before a zero update is returned.
        radius_strategy: ``"default"``, ``"fixed"`` or a callable (see :class:`TrustRegionBase`).
        reg: added to the diagonal of ``B`` in the CG solve.
        maxiter: maximum CG iterations (None: the number of variables).
        miniter: minimum CG iterations before the tolerance may stop it.
        cg_tol: relative residual tolerance of CG.
        prefer_exact: solve directly when ``B`` is a scaled identity.
        update_freq: update ``hess_module`` every this many steps.
        inner: module(s) whose output replaces the gradient.

    Example:
        Trust-region SR1: ``tz.Optimizer(params, tz.m.TrustCG(hess_module=tz.m.SR1(inverse=False)))``
    """

    def __init__(self, hess_module: Chainable, eta: float = 0.0, nplus: float = 3.5, nminus: float = 0.25,
                 rho_good: float = 0.99, rho_bad: float = 1e-4, boundary_tol: float | None = 1e-6, init: float = 1,
                 max_attempts: int = 10, radius_strategy: _RadiusStrategy | Literal["default", "fixed"] = "default",
                 reg: float = 0, maxiter: int | None = None, miniter: int = 1, cg_tol: float = 1e-8,
                 prefer_exact: bool = True, update_freq: int = 1, inner: Chainable | None = None):
        if maxiter is not None and int(maxiter) < 1:
            raise ValueError(f"maxiter must be a positive integer or None, got {maxiter}")
        super().__init__(dict(reg=reg, maxiter=maxiter, miniter=miniter, cg_tol=cg_tol, prefer_exact=prefer_exact),
                         hess_module=hess_module, eta=eta, nplus=nplus, nminus=nminus, rho_good=rho_good,
                         rho_bad=rho_bad, boundary_tol=boundary_tol, init=init, max_attempts=max_attempts,
                         radius_strategy=radius_strategy, radius_fn=torch.linalg.vector_norm,
                         update_freq=update_freq, inner=inner)

    def trust_solve(self, f: float, g: torch.Tensor, H: LinearOperator, radius: float, params: list[torch.Tensor],
                    closure: Callable, settings: Mapping[str, Any]) -> torch.Tensor:
        reg = float(settings["reg"])
        if settings["prefer_exact"]:
            d = exact_diagonal_step(H, g, radius, reg)
            if d is not None:
                return d
        return steihaug_cg(H, g, radius, reg=reg, tol=settings["cg_tol"], maxiter=settings["maxiter"],
                           miniter=settings["miniter"])
