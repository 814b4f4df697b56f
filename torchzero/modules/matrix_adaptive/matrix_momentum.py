"""Matrix momentum (Orr & Leen, 1996)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...core.transform import Transform
from ...utils.foreach import scalar_or_list

_HVP_METHODS = ("batched_autograd", "autograd", "fd_forward", "fd_central")


class MatrixMomentum(Transform):
    """Matrix momentum: a second-order momentum whose decay is the matrix ``I - mu H``.

    Orr, G. B. & Leen, T. K. (1996), "Using curvature information for fast stochastic search",
    Advances in Neural Information Processing Systems 9.

    Heavy-ball momentum keeps the previous step scaled by a constant ``beta``; matrix momentum
    replaces ``beta`` by ``I - mu H`` with ``H`` the Hessian at the current point. With
    ``d = x_k - x_{k-1}`` the last parameter change (measured from the parameters this module saw)
    the update (subtracted from the parameters) is::

        update_k = lr * u_k - (d - mu * H d)

    where ``u_k`` is the incoming update (after ``inner``). ``H d`` is one Hessian-vector product
    per step (``hvp_method``: exact autograd, or forward / central gradient differences with step
    ``h``), so a closure is required. The momentum term starts once two previous iterates are known
    (the first two steps are ``lr * u``). ``mu`` plays the role of ``1 - beta`` and must stay below
    ``1 / lambda_max(H)`` for stability. Place it first in the chain: it differentiates the closure.

    Args:
        lr: step size applied to the incoming update.
        mu: curvature coefficient.
        hvp_method: ``"autograd"``, ``"batched_autograd"`` (same for one product), ``"fd_forward"``
            or ``"fd_central"``.
        h: finite-difference step for the ``fd_*`` methods.
        adaptive: adaptive ``mu`` (not implemented here: raises; see the seed's
            ``AdaptiveMatrixMomentum``).
        adapt_freq: used only with ``adaptive``.
        inner: module(s) applied to the incoming update before it is scaled by ``lr``.
    """

    def __init__(self, lr: float, mu=0.1, hvp_method: Literal["batched_autograd", "autograd", "fd_forward", "fd_central"] = "autograd",
                 h: float = 1e-3, adaptive: bool = False, adapt_freq: int | None = None, inner: Chainable | None = None):
        if hvp_method not in _HVP_METHODS:
            raise ValueError(f"hvp_method must be one of {_HVP_METHODS}, got {hvp_method!r}")
        if adaptive:
            raise NotImplementedError("MatrixMomentum(adaptive=True) is not implemented")
        super().__init__(dict(lr=lr, mu=mu, hvp_method=hvp_method, h=h, adaptive=adaptive, adapt_freq=adapt_freq),
                         inner=inner, uses_grad=True)

    def apply_states(self, objective: Any, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Any:
        if objective.closure is None:
            raise RuntimeError("MatrixMomentum needs a closure for its Hessian-vector products; pass one to optimizer.step(closure)")
        params = objective.params
        lrs, mus = self.settings.values(params, "lr", "mu")
        s0 = settings[0]
        step = self.global_state.get("step", 0)
        self.global_state["step"] = step + 1
        updates = objective.get_updates()  # owned copy, taken before the closure is re-evaluated
        term = None
        if step >= 2 and all("prev" in st for st in states):
            d = [p.detach() - st["prev"] for p, st in zip(params, states)]
            hd, _ = objective.hessian_vector_product(d, None, True, s0["hvp_method"], s0["h"])
            term = torch._foreach_mul(hd, scalar_or_list([-m for m in mus]))
            torch._foreach_add_(term, d)
        if step >= 1:
            for p, st in zip(params, states):
                st["prev"] = p.detach().clone()
        torch._foreach_mul_(updates, scalar_or_list(lrs))
        if term is not None:
            torch._foreach_sub_(updates, term)
        return objective
