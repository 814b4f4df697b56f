"""Dogleg trust region."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...linalg import LinearOperator
from ._solvers import dogleg_step
from .trust_region import TrustRegionBase, _RadiusStrategy


class Dogleg(TrustRegionBase):
    """Dogleg trust region (Powell, 1970, "A hybrid method for nonlinear equations", in Numerical
    Methods for Nonlinear Algebraic Equations; Nocedal & Wright, 2006, "Numerical Optimization",
    section 4.1).

    With ``B`` the Hessian approximation, the Cauchy point ``d_c = (g^T g / g^T B g) g`` and the
    Newton point ``d_n = B^-1 g``, the step is the point where the path ``0 -> d_c -> d_n``
    leaves the ball of radius ``r`` (``d_n`` itself when it is inside; ``r g / ||g||`` when
    ``d_c`` is already outside or ``B`` has no positive curvature along ``g``). The radius is
    adapted as described in :class:`TrustRegionBase`.

    Args:
        hess_module: module maintaining the Hessian approximation (quasi-Newton methods with
            ``inverse=False``, ``Newton``...).
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
        update_freq: update ``hess_module`` every this many steps.
        inner: module(s) whose output replaces the gradient.
    """

    def __init__(self, hess_module: Chainable, eta: float = 0.0, nplus: float = 2, nminus: float = 0.25,
                 rho_good: float = 0.75, rho_bad: float = 0.25, boundary_tol: float | None = None, init: float = 1,
                 max_attempts: int = 10, radius_strategy: _RadiusStrategy | Literal["default", "fixed"] = "default",
                 update_freq: int = 1, inner: Chainable | None = None):
        super().__init__(None, hess_module=hess_module, eta=eta, nplus=nplus, nminus=nminus, rho_good=rho_good,
                         rho_bad=rho_bad, boundary_tol=boundary_tol, init=init, max_attempts=max_attempts,
                         radius_strategy=radius_strategy, radius_fn=torch.linalg.vector_norm,
                         update_freq=update_freq, inner=inner)

    def trust_solve(self, f: float, g: torch.Tensor, H: LinearOperator, radius: float, params: list[torch.Tensor],
                    closure: Callable, settings: Mapping[str, Any]) -> torch.Tensor:
        return dogleg_step(H, g, radius)
