"""Limited-memory BFGS (Nocedal, 1980; Liu & Nocedal, 1989)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import TensorTransform
from ...linalg import LinearOperator
from ...utils.params import vec_to_tensors


# ---------------------------------------------------------------------- flat vectors
def flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """All tensors as one vector: a view for a single contiguous tensor, a copy otherwise."""
    if len(tensors) == 1:
        return tensors[0].reshape(-1)
    return torch.cat([t.reshape(-1) for t in tensors])


def flat_copy(tensors: Sequence[torch.Tensor], out: torch.Tensor | None = None) -> torch.Tensor:
    """A fresh vector holding the concatenated tensors (written into ``out`` when given)."""
    if out is None:
        if len(tensors) == 1:
            return tensors[0].detach().reshape(-1).clone()
        return torch.cat([t.detach().reshape(-1) for t in tensors])
    i = 0
    for t in tensors:
        n = t.numel()
        out[i:i + n].copy_(t.detach().reshape(-1))
        i += n
    return out


# ---------------------------------------------------------------------- damping
def damp(s: torch.Tensor, y: torch.Tensor, sy: float, gamma: float, damping: Any) -> tuple[torch.Tensor, float]:
    """Damped ``y`` for a limited-memory method with ``B ~ I / gamma`` (``H ~ gamma I``).

    * ``"powell"`` (Powell, 1978, "Algorithms for nonlinear constraints that use Lagrangian
      functions", Math. Programming 14): if ``s.y < 0.2 s.Bs`` then
      ``y <- theta y + (1 - theta) B s`` with ``theta = 0.8 s.Bs / (s.Bs - s.y)``;
    * ``"double"`` (Al-Baali, 2014, "Damped techniques for enforcing convergence of quasi-Newton
      methods", Optim. Methods Softw. 29(5)): Powell's damping, then the same test on the inverse
      side, ``y.Hy`` against ``s.y``, which moves ``s`` towards ``H y`` (applied to ``y`` through
      ``B``).

    A callable ``damping(s, y) -> (s, y)`` is used as is.
    """
    if damping is None:
        return y, sy
    if callable(damping):
        s2, y2 = damping(s, y)
        if s2 is not s:
            s.copy_(s2)
        return y2, float(s.dot(y2))
    if damping not in ("powell", "double"):
        raise ValueError(f"damping must be 'powell', 'double', a callable or None, got {damping!r}")
    sBs = float(s.dot(s)) / gamma
    if sy < 0.2 * sBs:
        theta = 0.8 * sBs / (sBs - sy)
        y = y.mul(theta).add_(s, alpha=(1 - theta) / gamma)
        sy = float(s.dot(y))
    if damping == "double":
        yHy = float(y.dot(y)) * gamma
        if sy < 0.2 * yHy:
            theta = 0.8 * yHy / (yHy - sy)
            # s <- theta s + (1 - theta) H y, expressed on y through B = I / gamma
            y = y.mul(theta).add_(y, alpha=(1 - theta))
            sy = float(s.dot(y))
    return y, sy


# ---------------------------------------------------------------------- linear operator
class LimitedMemoryOperator(LinearOperator):
    """A Hessian approximation ``B`` held as curvature pairs, acting on flat vectors.

    ``matvec(v)`` is ``B v`` and ``solve(v)`` is ``B^{-1} v = H v``; subclasses implement both.
    """

    def __init__(self, s_history: Sequence[torch.Tensor], y_history: Sequence[torch.Tensor], ref: torch.Tensor):
        self.s_history = list(s_history)
        self.y_history = list(y_history)
        self.ref = ref

    def size(self) -> int:
        return self.ref.numel()

    def _ref(self) -> torch.Tensor:
        return self.ref

    def rmatvec(self, x: torch.Tensor) -> torch.Tensor:
        return self.matvec(x)


class LBFGSOperator(LimitedMemoryOperator):
    """The L-BFGS approximation ``B`` of the Hessian (``H = B^{-1}`` by the two-loop recursion)."""

    def __init__(self, s_history, y_history, sy_history, gamma: float, ref: torch.Tensor):
        super().__init__(s_history, y_history, ref)
        self.sy_history = list(sy_history)
        self.gamma = gamma

    def solve(self, v: torch.Tensor) -> torch.Tensor:
        return two_loop(v.clone(), self.s_history, self.y_history, self.sy_history, self.gamma)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``B v`` from the compact representation (Byrd, Nocedal & Schnabel, 1994, "Representations
        of quasi-Newton matrices and their use in limited memory methods", Math. Programming 63):
        ``B = sigma I - W M^{-1} W^T`` with ``W = [sigma S, Y]``, ``sigma = 1 / gamma`` and
        ``M = [[sigma S^T S, L], [L^T, -D]]``, ``L`` the strictly lower part of ``S^T Y``, ``D`` its diagonal."""
        sigma = 1.0 / self.gamma
        if not self.s_history:
            return v * sigma
        S = torch.stack(self.s_history, 1)
        Y = torch.stack(self.y_history, 1)
        SY = S.T @ Y
        L = torch.tril(SY, -1)
        D = torch.diag(torch.diagonal(SY))
        M = torch.cat([torch.cat([sigma * (S.T @ S), L], 1), torch.cat([L.T, -D], 1)], 0)
        W = torch.cat([sigma * S, Y], 1)
        return sigma * v - W @ torch.linalg.solve(M, W.T @ v)


def two_loop(q: torch.Tensor, s_history: Sequence[torch.Tensor], y_history: Sequence[torch.Tensor],
             sy_history: Sequence[float], gamma: float) -> torch.Tensor:
    """``H q`` by the L-BFGS two-loop recursion (Nocedal & Wright, 2006, Algorithm 7.4), in place on ``q``.

    ``H_0 = gamma I``; pairs are ordered oldest first.
    """
    m = len(s_history)
    alphas = [0.0] * m
    for i in range(m - 1, -1, -1):
        a = float(s_history[i].dot(q)) / sy_history[i]
        alphas[i] = a
        q.add_(y_history[i], alpha=-a)
    if gamma != 1:
        q.mul_(gamma)
    for i in range(m):
        b = float(y_history[i].dot(q)) / sy_history[i]
        q.add_(s_history[i], alpha=alphas[i] - b)
    return q


# ---------------------------------------------------------------------- module
class LimitedMemoryBase(TensorTransform):
    """Shared plumbing of :class:`LBFGS` and :class:`LSR1`: flat history of ``s`` and ``y`` pairs.

    ``s_k = x_{k+1} - x_k`` and ``y_k = u_{k+1} - u_k``, where ``u`` is the update this module
    receives (the gradient, unless modules before it change it). The history lives in
    ``global_state`` as flat vectors (all parameters concatenated).
    """

    def __init__(self, defaults: dict[str, Any], update_freq: int, inner: Chainable | None):
        super().__init__(defaults, update_freq=update_freq, inner=inner)

    # hooks for subclasses ---------------------------------------------------
    def accept_pair(self, s: torch.Tensor, y: torch.Tensor, setting) -> tuple[torch.Tensor, float] | None:
        """Returns the (possibly damped) ``y`` and ``s.y``, or None to skip the pair."""
        raise NotImplementedError

    def precondition(self, q: torch.Tensor, setting) -> torch.Tensor:
        raise NotImplementedError

    # state ------------------------------------------------------------------
    def _reset_history(self) -> None:
        gs = self.global_state
        for k in ("s_history", "y_history", "sy_history", "prev_p", "prev_u", "spare_s", "spare_y"):
            gs.pop(k, None)

    def reset_for_online(self) -> None:
        super().reset_for_online()
        self.global_state.pop("prev_p", None)
        self.global_state.pop("prev_u", None)

    def update_states(self, objective: Objective, states, settings) -> None:
        params = objective.params
        setting = self.settings[params[0]]
        gs = self.global_state
        u = objective.peek_updates()
        prev_p, prev_u = gs.get("prev_p"), gs.get("prev_u")
        s_hist: list[torch.Tensor] = gs.setdefault("s_history", [])
        y_hist: list[torch.Tensor] = gs.setdefault("y_history", [])
        sy_hist: list[float] = gs.setdefault("sy_history", [])
        if prev_p is None or prev_u is None:
            gs["prev_p"] = flat_copy(params)
            gs["prev_u"] = flat_copy(u)
            return
        history_size = setting["history_size"]
        p_new = flat(params).detach()
        u_new = flat(u).detach()
        # storage of a dropped pair is reused for the next one
        s_buf, y_buf = gs.pop("spare_s", None), gs.pop("spare_y", None)
        s = torch.sub(p_new, prev_p, out=s_buf) if s_buf is not None else p_new - prev_p
        y = torch.sub(u_new, prev_u, out=y_buf) if y_buf is not None else u_new - prev_u
        prev_p.copy_(p_new)
        prev_u.copy_(u_new)

        ptol, gtol = setting["ptol"], setting["gtol"]
        if ptol is not None and float(s.abs().max()) < ptol:
            if setting["ptol_restart"]:
                self._reset_history()
                gs["prev_p"], gs["prev_u"] = prev_p, prev_u
            return
        if gtol is not None and float(y.abs().max()) < gtol:
            if setting.get("gtol_restart", False):
                self._reset_history()
                gs["prev_p"], gs["prev_u"] = prev_p, prev_u
            return
        acc = self.accept_pair(s, y, setting)
        if acc is None or history_size <= 0:
            gs["spare_s"], gs["spare_y"] = s, y
            return
        y, sy = acc
        s_hist.append(s)
        y_hist.append(y)
        sy_hist.append(sy)
        while len(s_hist) > history_size:
            gs["spare_s"], gs["spare_y"] = s_hist[0], y_hist[0]
            del s_hist[0], y_hist[0], sy_hist[0]

    def apply_states(self, objective: Objective, states, settings) -> Objective:
        params = objective.params
        setting = self.settings[params[0]]
        u = objective.get_updates()
        single = len(u) == 1 and u[0].is_contiguous()
        q = u[0].view(-1) if single else torch.cat([t.reshape(-1) for t in u])
        q = self.precondition(q, setting)
        out = [q.view_as(u[0])] if single else vec_to_tensors(q, u)
        objective.set_updates(out, owned=True)
        return objective

    def apply(self, objective: Objective) -> Objective:
        if "inner" in self.children:
            objective = self.inner_step("inner", objective)
        return self.apply_states(objective, [], [])


class LBFGS(LimitedMemoryBase):
    """Limited-memory BFGS (Nocedal, 1980, "Updating quasi-Newton matrices with limited storage",
    Math. Comp. 35(151); Liu & Nocedal, 1989, "On the limited memory BFGS method for large scale
    optimization", Math. Programming 45).

    Keeps the last ``history_size`` pairs ``s_i = x_{i+1} - x_i``, ``y_i = g_{i+1} - g_i`` (``g`` is
    the update this module receives) and returns ``H g`` computed by the two-loop recursion with
    ``H_0 = gamma I``, ``gamma = s.y / y.y`` of the newest pair (Nocedal & Wright, 2006, "Numerical
    Optimization", Algorithm 7.4). A pair is skipped when ``max|s| < ptol``, ``max|y| < gtol`` or
    ``s.y < sy_tol`` (negative curvature); with ``ptol_restart`` / ``gtol_restart`` the history is
    cleared instead. With no pair yet and ``scale_first``, the first step is
    ``g min(1, 1 / ||g||_1)`` as in ``torch.optim.LBFGS``, so that a line search starting at 1 does
    not begin with a huge step. A line search or trust region is recommended.

    All parameters are concatenated into one vector; the recursion works on it with one dot
    product and one axpy per pair and loop.

    Args:
        history_size: number of stored pairs.
        ptol: skip the pair when the largest absolute parameter difference is smaller (None: never).
        ptol_restart: clear the history instead of skipping.
        gtol: skip the pair when the largest absolute gradient difference is smaller (None: never).
        gtol_restart: clear the history instead of skipping.
        sy_tol: skip the pair when ``s.y`` is smaller.
        scale_first: scale the first step by ``min(1, 1/||g||_1)``.
        update_freq: update the history every this many steps.
        damping: ``"powell"``, ``"double"`` or a callable ``(s, y) -> (s, y)`` (see :func:`damp`).
        inner: modules applied to the update after the history is updated and before it is
            preconditioned.

    Example::

        tz.Optimizer(model.parameters(), tz.m.LBFGS(), tz.m.StrongWolfe())
    """

    def __init__(self, history_size=10, ptol: float | None = 1e-32, ptol_restart: bool = False,
                 gtol: float | None = 1e-32, gtol_restart: bool = False, sy_tol: float = 1e-32,
                 scale_first: bool = True, update_freq=1,
                 damping: Literal["powell", "double"] | Any | None = None, inner: Chainable | None = None):
        if history_size < 0:
            raise ValueError(f"history_size must be non-negative, got {history_size}")
        if damping is not None and not callable(damping) and damping not in ("powell", "double"):
            raise ValueError(f"damping must be 'powell', 'double', a callable or None, got {damping!r}")
        super().__init__(dict(history_size=history_size, ptol=ptol, ptol_restart=ptol_restart, gtol=gtol,
                              gtol_restart=gtol_restart, sy_tol=sy_tol, scale_first=scale_first, damping=damping),
                         update_freq=update_freq, inner=inner)

    def _gamma(self) -> float:
        gs = self.global_state
        s_hist, y_hist, sy_hist = gs.get("s_history"), gs.get("y_history"), gs.get("sy_history")
        if not s_hist:
            return 1.0
        yy = float(y_hist[-1].dot(y_hist[-1]))
        return sy_hist[-1] / yy if yy > 0 else 1.0

    def accept_pair(self, s, y, setting):
        sy = float(s.dot(y))
        damping = setting["damping"]
        if damping is not None:
            y, sy = damp(s, y, sy, self._gamma(), damping)
        if not math.isfinite(sy) or sy < setting["sy_tol"] or sy <= 0:
            return None
        return y, sy

    def precondition(self, q, setting):
        gs = self.global_state
        s_hist = gs.get("s_history")
        if not s_hist:
            if setting["scale_first"]:
                l1 = float(q.abs().sum())
                if l1 > 1:
                    q.div_(l1)
            return q
        return two_loop(q, s_hist, gs["y_history"], gs["sy_history"], self._gamma())

    def get_H(self, objective: Objective | None = None) -> LBFGSOperator | None:
        gs = self.global_state
        s_hist = gs.get("s_history") or []
        ref = gs.get("prev_p")
        if ref is None:
            return None
        return LBFGSOperator(s_hist, gs.get("y_history") or [], gs.get("sy_history") or [], self._gamma(), ref)
