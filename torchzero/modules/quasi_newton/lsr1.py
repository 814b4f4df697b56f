"""Limited-memory SR1 (Byrd, Nocedal & Schnabel, 1994)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from .lbfgs import LimitedMemoryBase, LimitedMemoryOperator, damp

_SKIP_TOL = 1e-8


def sr1_corrections(s_history: Sequence[torch.Tensor], y_history: Sequence[torch.Tensor], gamma: float
                    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The rank-one corrections of ``H = gamma I + sum_i z_i z_i^T / d_i`` built from the pairs,
    oldest first: ``z_i = s_i - H_i y_i``, ``d_i = z_i^T y_i``, with ``H_i`` the matrix after the
    earlier pairs. A pair with ``|d_i| <= 1e-8 ||z_i|| ||y_i||`` is skipped (Nocedal & Wright,
    2006, eq. 6.26). Returns ``Z`` (one row per kept pair) and ``d``, or ``(None, None)``."""
    Z: torch.Tensor | None = None
    d: torch.Tensor | None = None
    for s, y in zip(s_history, y_history):
        z = s - gamma * y
        if Z is not None:
            z = z - Z.T @ ((Z @ y) / d)
        zy = z.dot(y)
        if not bool(zy.abs() > _SKIP_TOL * z.norm() * y.norm()):
            continue
        Z = z.unsqueeze(0) if Z is None else torch.cat([Z, z.unsqueeze(0)])
        d = zy.reshape(1) if d is None else torch.cat([d, zy.reshape(1)])
    return Z, d


class LSR1Operator(LimitedMemoryOperator):
    """The L-SR1 approximation: ``H = gamma I + Z^T diag(1/d) Z`` (inverse Hessian) and
    ``B = H^{-1}`` by the Woodbury identity:
    ``B = I/gamma - Z^T (gamma^2 diag(d) + gamma Z Z^T)^{-1} Z``."""

    def __init__(self, s_history, y_history, gamma: float, ref: torch.Tensor):
        super().__init__(s_history, y_history, ref)
        self.gamma = gamma
        self.Z, self.d = sr1_corrections(self.s_history, self.y_history, gamma)

    def solve(self, v: torch.Tensor) -> torch.Tensor:
        out = v * self.gamma
        if self.Z is not None:
            out = out + self.Z.T @ ((self.Z @ v) / self.d)
        return out

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        g = self.gamma
        out = v / g
        if self.Z is not None:
            M = g * g * torch.diag(self.d) + g * (self.Z @ self.Z.T)
            out = out - self.Z.T @ torch.linalg.solve(M, self.Z @ v)
        return out


class LSR1(LimitedMemoryBase):
    """Limited-memory symmetric rank-one method (Byrd, Nocedal & Schnabel, 1994, "Representations
    of quasi-Newton matrices and their use in limited memory methods", Math. Programming 63,
    129-156, doi:10.1007/BF01582063).

    Keeps the last ``history_size`` pairs ``s_i = x_{i+1} - x_i``, ``y_i = g_{i+1} - g_i`` and
    returns ``H g`` where ``H`` is ``I`` updated by the SR1 formula
    ``H+ = H + (s - H y)(s - H y)^T / ((s - H y)^T y)`` with each stored pair, oldest first;
    pairs whose denominator is tiny relative to ``||s - H y|| ||y||`` are skipped. Unlike BFGS,
    ``H`` need not be positive definite, so SR1 can follow negative curvature: use a line search
    or, better, a trust region after it.

    Args:
        history_size: number of stored pairs.
        ptol: skip the pair when the largest absolute parameter difference is smaller (None: never).
        ptol_restart: clear the history instead of skipping.
        gtol: skip the pair when the largest absolute gradient difference is smaller (None: never).
        gtol_restart: clear the history instead of skipping.
        scale_first: scale the first step (no pair yet) by ``min(1, 1/||g||_1)`` so that a line
            search starting at 1 does not begin with a huge step.
        update_freq: update the history every this many steps.
        damping: ``"powell"``, ``"double"`` or a callable ``(s, y) -> (s, y)`` applied to each new
            pair (see :func:`~torchzero.modules.quasi_newton.lbfgs.damp`).
        inner: modules applied to the update after the history is updated and before it is
            preconditioned.

    Example::

        tz.Optimizer(model.parameters(), tz.m.LSR1(), tz.m.StrongWolfe(c2=0.1, fallback=True))
    """

    def __init__(self, history_size=10, ptol: float | None = None, ptol_restart: bool = False,
                 gtol: float | None = None, gtol_restart: bool = False, scale_first: bool = False,
                 update_freq=1, damping: Literal["powell", "double"] | Any | None = None,
                 inner: Chainable | None = None):
        if history_size < 0:
            raise ValueError(f"history_size must be non-negative, got {history_size}")
        if damping is not None and not callable(damping) and damping not in ("powell", "double"):
            raise ValueError(f"damping must be 'powell', 'double', a callable or None, got {damping!r}")
        super().__init__(dict(history_size=history_size, ptol=ptol, ptol_restart=ptol_restart, gtol=gtol,
                              gtol_restart=gtol_restart, scale_first=scale_first, damping=damping),
                         update_freq=update_freq, inner=inner)

    def accept_pair(self, s, y, setting):
        sy = float(s.dot(y))
        damping = setting["damping"]
        if damping is not None:
            y, sy = damp(s, y, sy, 1.0, damping)
        if not bool(torch.isfinite(s).all()) or not bool(torch.isfinite(y).all()):
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
        Z, d = sr1_corrections(s_hist, gs["y_history"], 1.0)
        if Z is None:
            return q
        return q.add_(Z.T @ ((Z @ q) / d))

    def get_H(self, objective: Objective | None = None) -> LSR1Operator | None:
        gs = self.global_state
        ref = gs.get("prev_p")
        if ref is None:
            return None
        return LSR1Operator(gs.get("s_history") or [], gs.get("y_history") or [], 1.0, ref)
