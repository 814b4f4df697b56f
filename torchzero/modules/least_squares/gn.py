"""Least squares: the closure returns a vector of residuals ``r(x)`` and the loss is ``sum r_i^2``."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import Transform
from ...linalg import Dense
from ...utils.params import tensors_to_vec, vec_to_tensors


class SumOfSquaresClosure:
    """Wraps a residual closure into ``closure(backward) -> sum(r**2)``.

    With ``backward=True`` the gradients ``2 J^T r`` are written into ``p.grad``.
    """

    def __init__(self, closure: Any, params: Sequence[torch.Tensor]):
        self.closure = closure
        self.params = list(params)

    def __call__(self, backward: bool = True) -> torch.Tensor:
        if not backward:
            return _sum_sq(self.closure(False))
        with torch.enable_grad():
            loss = _sum_sq(self.closure(False))
        for p in self.params:
            p.grad = None
        if loss.requires_grad:
            loss.backward()
        return loss


def _sum_sq(r: Any) -> torch.Tensor:
    r = torch.as_tensor(r)
    return r.square().sum()


class SumOfSquares(Transform):
    """Makes the loss the sum of squares of what the closure returns: ``f(x) = sum_i r_i(x)^2``.

    The closure returns a vector of residuals (it is always called with ``backward=False``; the
    gradient ``2 J^T r`` is computed here). Modules after this one see an ordinary scalar loss, so any
    optimizer can be compared with a least-squares method such as :class:`GaussNewton` on the same
    residual closure. Must come first in the chain.
    """

    def __init__(self):
        super().__init__()

    def update(self, objective: Objective) -> None:
        pass

    def apply(self, objective: Objective) -> Objective:
        if objective.closure is None:
            raise RuntimeError("SumOfSquares needs a closure returning residuals; pass one to optimizer.step(closure)")
        if not isinstance(objective.closure, SumOfSquaresClosure):
            objective.closure = SumOfSquaresClosure(objective.closure, objective.params)
        if objective.loss is not None and torch.as_tensor(objective.loss).numel() != 1:
            objective.loss = objective.loss_approx = _sum_sq(objective.loss).detach()
        return objective


class GaussNewton(Transform):
    """Gauss-Newton method for ``min_x sum_i r_i(x)^2`` where the closure returns the residuals ``r``.

    With the Jacobian ``J = dr/dx`` (``m x n``) the Hessian of the loss is approximated by
    ``2 J^T J`` (the second-derivative terms of the residuals are dropped), so the Newton step on the
    gradient ``g = 2 J^T r`` is::

        update = (J^T J + reg I)^-1 J^T r  =  (2 J^T J + 2 reg I)^-1 g

    More generally the incoming update ``u`` (the gradient, or the output of ``inner``) becomes
    ``(2 J^T J + 2 reg I)^-1 u``. The Jacobian comes from one vectorised backward pass over the
    ``m`` residuals (``batched=True``) or one backward pass per residual. Modules after this one see
    the loss ``sum r^2`` and a closure returning it, so line searches work as usual.

    The closure must accept ``backward`` (it is always called with ``backward=False``) and return the
    residual vector with its graph. Reference: Nocedal & Wright (2006), "Numerical Optimization",
    2nd ed., section 10.3.

    Args:
        reg: added to the diagonal of ``J^T J``.
        update_freq: compute the Jacobian every this many steps; in between only the residuals are
            evaluated and the last Jacobian is reused.
        batched: vectorise the Jacobian over the residuals.
        inner: modules whose output is preconditioned.
    """

    def __init__(self, reg: float = 1e-8, update_freq: int = 1, batched: bool = True, inner: Chainable | None = None):
        if update_freq < 1:
            raise ValueError(f"update_freq must be >= 1, got {update_freq}")
        super().__init__(dict(reg=reg, update_freq=update_freq, batched=batched), inner=inner)

    def update(self, objective: Objective) -> None:
        if objective.closure is None:
            raise RuntimeError("GaussNewton needs a closure returning residuals; pass one to optimizer.step(closure)")
        params = objective.params
        s = self.settings[params[0]]
        step = self.increment_counter("step", 0)
        closure = objective.closure
        if isinstance(closure, SumOfSquaresClosure):
            closure = closure.closure
        compute_J = step % int(s["update_freq"]) == 0 or "J" not in self.global_state
        with torch.enable_grad():
            r = torch.as_tensor(closure(False)).reshape(-1)
            if compute_J:
                J = _jacobian(r, params, bool(s["batched"]))
                self.global_state["J"] = J
        J = self.global_state["J"]
        r = r.detach()
        g = 2 * (J.T @ r)
        objective.loss = objective.loss_approx = r.square().sum()
        objective.grads = vec_to_tensors(g, params)
        objective.closure = SumOfSquaresClosure(closure, params)

    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        J = self.global_state["J"]
        reg = settings[0]["reg"]
        u = tensors_to_vec(objective.peek_updates())
        n = J.shape[1]
        A = 2 * (J.T @ J) + 2 * reg * torch.eye(n, dtype=J.dtype, device=J.device)
        L, info = torch.linalg.cholesky_ex(A)
        if info.item() == 0:
            d = torch.cholesky_solve(u.unsqueeze(-1), L).squeeze(-1)
        else:
            d = torch.linalg.lstsq(A, u.unsqueeze(-1)).solution.squeeze(-1)
        objective.set_updates(vec_to_tensors(d, objective.params), owned=True)
        return objective

    def get_H(self, objective: Objective | None = None) -> Dense | None:
        J = self.global_state.get("J")
        if J is None:
            return None
        reg = self.defaults["reg"]
        return Dense(2 * (J.T @ J) + 2 * reg * torch.eye(J.shape[1], dtype=J.dtype, device=J.device))


def _jacobian(r: torch.Tensor, params: list[torch.Tensor], batched: bool) -> torch.Tensor:
    m = r.numel()
    n = sum(p.numel() for p in params)
    if not r.requires_grad:
        return torch.zeros(m, n, dtype=r.dtype, device=r.device)
    if batched:
        eye = torch.eye(m, dtype=r.dtype, device=r.device)
        rows = torch.autograd.grad(r, params, grad_outputs=eye, is_grads_batched=True, allow_unused=True)
        return torch.cat([(torch.zeros(m, p.numel(), dtype=r.dtype, device=r.device) if g is None else g.reshape(m, -1))
                          for g, p in zip(rows, params)], 1).detach()
    J = torch.empty(m, n, dtype=r.dtype, device=r.device)
    for i in range(m):
        row = torch.autograd.grad(r[i], params, retain_graph=True, allow_unused=True)
        J[i] = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(row, params)])
    return J
