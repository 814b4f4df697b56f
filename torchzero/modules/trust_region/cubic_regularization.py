"""Cubic regularization of Newton-like methods."""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...linalg import LinearOperator
from ._solvers import cubic_step
from .levenberg_marquardt import is_inverse_operator
from .trust_region import TrustRegionBase, _loss_at, _RadiusStrategy


class CubicRegularization(TrustRegionBase):
    """Adaptive cubic regularization (Nesterov & Polyak, 2006, "Cubic regularization of Newton method
    and its global performance", Math. Program. 108, doi:10.1007/s10107-006-0706-8; Cartis, Gould &
    Toint, 2011, "Adaptive cubic regularisation methods for unconstrained optimization",
    Math. Program. 127, doi:10.1007/s10107-009-0286-5).

    The step minimises the cubic model

        -g^T d + 1/2 d^T B d + sigma/3 ||d||^3,    sigma = 1 / r,

    whose global minimiser solves ``(B + sigma ||d|| I) d = g`` with ``B + sigma ||d|| I``
    positive semidefinite; the scalar equation in ``||d||`` is solved after an eigendecomposition
    of ``B`` (``maxiter`` safeguarded Newton iterations, tolerance ``eps``). The "radius" ``r`` is
    the inverse of the regularization weight and is adapted as described in
    :class:`TrustRegionBase` from the ratio of the actual to the predicted (quadratic model)
    reduction.

    Args:
        hess_module: module maintaining the Hessian approximation (not its inverse): quasi-Newton
            methods with ``inverse=False``, ``Newton``, ``GaussNewton``...
        eta: a step is accepted when the reduction ratio exceeds this.
        nplus: radius growth factor on good steps.
        nminus: radius shrink factor on bad steps.
        rho_good: reduction ratio above which the radius grows.
        rho_bad: reduction ratio below which the radius shrinks.
        init: initial radius.
        max_attempts: trial steps per step before a zero update is returned.
        radius_strategy: ``"default"``, ``"fixed"`` or a callable (see :class:`TrustRegionBase`).
        maxiter: maximum iterations of the subproblem solver.
        eps: relative tolerance of the subproblem solver.
        check_decrease: first try the unregularized step ``B^-1 g`` (one evaluation per step); when it
            decreases the loss it is used as the solution of the subproblem (its loss is reused by the
            radius rule, so it costs no second evaluation).
        update_freq: update ``hess_module`` every this many steps.
        inner: module(s) whose output replaces the gradient.

    Example:
        Cubic regularized Newton: ``tz.Optimizer(params, tz.m.CubicRegularization(tz.m.Newton()))``
    """

    def __init__(self, hess_module: Chainable, eta: float = 0.0, nplus: float = 3.5, nminus: float = 0.25,
                 rho_good: float = 0.99, rho_bad: float = 1e-4, init: float = 1, max_attempts: int = 10,
                 radius_strategy: _RadiusStrategy | Literal["default", "fixed"] = "default", maxiter: int = 100,
                 eps: float = 1e-8, check_decrease: bool = False, update_freq: int = 1, inner: Chainable | None = None):
        super().__init__(dict(maxiter=maxiter, eps=eps, check_decrease=check_decrease), hess_module=hess_module,
                         eta=eta, nplus=nplus, nminus=nminus, rho_good=rho_good, rho_bad=rho_bad, boundary_tol=None,
                         init=init, max_attempts=max_attempts, radius_strategy=radius_strategy, radius_fn=None,
                         update_freq=update_freq, inner=inner)

    def trust_region_apply(self, objective, tensors, H):
        if H is not None and is_inverse_operator(H):
            raise RuntimeError(
                f"{type(self).__name__}: {self.children['hess_module']!r} keeps the inverse Hessian; construct the "
                "quasi-Newton module with inverse=False")
        self._newton_check = None  # (d, f(x - d)) of the unregularized step, evaluated once per step
        try:
            return super().trust_region_apply(objective, tensors, H)
        finally:
            self._newton_check = None

    def trust_solve(self, f: float, g: torch.Tensor, H: LinearOperator, radius: float, params: list[torch.Tensor],
                    closure: Callable, settings: Mapping[str, Any]) -> torch.Tensor:
        if settings["check_decrease"]:
            check = getattr(self, "_newton_check", None)
            if check is None:
                d_n = H.solve(g)
                f_n = _loss_at(params, closure, d_n) if bool(torch.isfinite(d_n).all()) else math.inf
                check = self._newton_check = (d_n, f_n)
            if check[1] < f:
                return check[0]
        return cubic_step(H, g, 1.0 / radius, maxiter=settings["maxiter"], eps=settings["eps"])

    def _trial_closure(self, closure: Callable, d: torch.Tensor) -> Callable:
        check = getattr(self, "_newton_check", None)
        if check is not None and check[0] is d:
            f_n = check[1]
            return lambda backward=True: torch.tensor(f_n)
        return closure
