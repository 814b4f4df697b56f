"""The shared machinery of full-matrix and diagonal quasi-Newton methods.

A quasi-Newton method keeps an approximation either of the inverse Hessian (``H``, the
"inverse" form: the step is ``H g``) or of the Hessian itself (``B``, the "direct" form: the step
solves ``B d = g``). After every step it sees the parameter difference ``s = x_k - x_{k-1}`` and
the gradient difference ``y = g_k - g_{k-1}`` and corrects the approximation so that it agrees
with them, usually through the secant condition ``H y = s`` (``B s = y``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import TensorTransform
from ...linalg import BlockDiagonal, Dense, DenseInverse, Diagonal, LinearOperator
from ...utils.params import vec_to_tensors

_CONCAT = "__concat"


def safe_solve(B: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``B^-1 g``, falling back to least squares when ``B`` is singular."""
    x, info = torch.linalg.solve_ex(B, g.unsqueeze(-1))
    if info.item() != 0 or not torch.isfinite(x).all():
        x = torch.linalg.lstsq(B, g.unsqueeze(-1)).solution
    return x.squeeze(-1)


class HessianUpdateStrategy(TensorTransform):
    """Base class of quasi-Newton methods that keep a (full or diagonal) Hessian approximation.

    Subclasses implement :meth:`update_H` (inverse form) and/or :meth:`update_B` (direct form):
    given the current matrix ``P`` (``H`` or ``B``; a vector for diagonal methods), the step
    ``s``, the gradient difference ``y`` and the current and previous points and gradients, they
    return the corrected matrix. Everything else is shared:

    * the first step uses ``P_0 = I / init_scale`` for ``H`` (``I * init_scale`` for ``B``). With
      ``init_scale="auto"``, ``P_0 = I`` and right before the first update the matrix is rescaled by
      ``s^T y / y^T y`` (``H``) or ``y^T y / s^T y`` (``B``), the heuristic of Nocedal & Wright,
      *Numerical Optimization*, 2nd ed., eq. 6.20;
    * an update is skipped when ``max |s| < ptol`` (and the matrix reset when ``ptol_restart``) or
      when ``max |y| < gtol``; each method also skips updates whose denominators fall below ``tol``;
    * every ``restart_interval`` updates the matrix is reset to its initial value (``"auto"``: the
      number of variables plus one);
    * with ``beta``, the new matrix is ``beta P_old + (1 - beta) P_new``;
    * the matrix is updated every ``update_freq`` steps, with ``s`` and ``y`` measured from the
      previous update;
    * with ``scale_first``, the first step is multiplied by ``min(1, 1/||g||_1)``.

    ``s`` and ``y`` are computed from the update this module receives (normally the gradient); the
    preconditioner is applied to the output of ``inner``. With ``concat_params`` all parameters
    are one vector and one matrix; otherwise each parameter gets its own.

    Args:
        defaults: settings of the subclass.
        init_scale: initial Hessian scale (``"auto"`` or a number).
        tol: tolerance on the denominators of the update rule.
        ptol: skip the update when the largest parameter difference is below this.
        ptol_restart: reset the approximation when ``ptol`` is not met.
        gtol: skip the update when the largest gradient difference is below this.
        restart_interval: reset the approximation every this many updates (``"auto"``: n + 1).
        beta: momentum on the approximation.
        update_freq: update the approximation every this many steps.
        scale_first: scale the first step down by the gradient's L1 norm.
        concat_params: one approximation for all parameters concatenated.
        inverse: keep the inverse ``H`` (True) or the Hessian ``B`` (False).
        uses_loss: the update rule needs the loss (made available as ``state["f"]`` and ``state["f_prev"]``).
        inner: module(s) whose output is preconditioned.
    """

    inplace = False
    _just_scaled = False
    """True while the update that follows the ``"auto"`` rescaling of ``P_0`` runs (for rules that are
    degenerate on a scaled identity, such as SR1)."""

    def __init__(self, defaults: dict | None = None, init_scale: float | Literal["auto"] = "auto", tol: float = 1e-32,
                 ptol: float | None = 1e-32, ptol_restart: bool = False, gtol: float | None = 1e-32,
                 restart_interval: int | None | Literal["auto"] = None, beta: float | None = None, update_freq: int = 1,
                 scale_first: bool = False, concat_params: bool = True, inverse: bool = True, uses_loss: bool = False,
                 inner: Chainable | None = None):
        if init_scale != "auto" and not isinstance(init_scale, (int, float)):
            raise TypeError(f"init_scale must be a number or 'auto', got {init_scale!r}")
        if restart_interval is not None and restart_interval != "auto" and int(restart_interval) < 1:
            raise ValueError(f"restart_interval must be a positive integer, 'auto' or None, got {restart_interval!r}")
        if inverse and not self._has("update_H"):
            raise ValueError(f"{type(self).__name__} has no inverse form; use inverse=False")
        if not inverse and not self._has("update_B"):
            raise ValueError(f"{type(self).__name__} has no direct form; use inverse=True")
        d = dict(init_scale=init_scale, tol=tol, ptol=ptol, ptol_restart=ptol_restart, gtol=gtol,
                 restart_interval=restart_interval, beta=beta, scale_first=scale_first)
        if defaults is not None:
            d.update(defaults)
        super().__init__(d, update_freq=update_freq, concat_params=concat_params, uses_loss=uses_loss, inner=inner)
        self._inverse = inverse

    @classmethod
    def _has(cls, name: str) -> bool:
        return getattr(cls, name) is not getattr(HessianUpdateStrategy, name)

    @property
    def _key(self) -> str:
        return "H" if self._inverse else "B"

    # ------------------------------------------------------------------ hooks
    def initialize_P(self, size: int, device: torch.device, dtype: torch.dtype, is_inverse: bool) -> torch.Tensor:
        """The unscaled initial matrix (the identity; a vector of ones for diagonal methods)."""
        return torch.eye(size, device=device, dtype=dtype)

    # Both update hooks receive: the current matrix, s = p - p_prev, y = g - g_prev, the current and
    # previous parameters and gradients (flattened), the module's state dict and its settings.
    def update_H(self, H: torch.Tensor, s: torch.Tensor, y: torch.Tensor, p: torch.Tensor, g: torch.Tensor, p_prev: torch.Tensor, g_prev: torch.Tensor, state: dict[str, Any], setting: Mapping[str, Any]) -> torch.Tensor:  # noqa: E501
        """The new inverse Hessian approximation (``H`` may be modified in place); inverse-form methods override this."""
        raise NotImplementedError(f"{type(self).__name__} has no inverse form")

    def update_B(self, B: torch.Tensor, s: torch.Tensor, y: torch.Tensor, p: torch.Tensor, g: torch.Tensor, p_prev: torch.Tensor, g_prev: torch.Tensor, state: dict[str, Any], setting: Mapping[str, Any]) -> torch.Tensor:  # noqa: E501
        """The new Hessian approximation (``B`` may be modified in place); direct-form methods override this."""
        raise NotImplementedError(f"{type(self).__name__} has no direct form")

    def auto_initial_scale(self, s: torch.Tensor, y: torch.Tensor) -> float | None:
        """The factor applied to ``P_0`` before the first update with ``init_scale="auto"`` (None: none)."""
        sy = float(s.dot(y))
        yy = float(y.dot(y))
        if not (sy > 0 and yy > 0 and math.isfinite(sy) and math.isfinite(yy)):
            return None
        return sy / yy if self._inverse else yy / sy

    def initial_P(self, size: int, device: torch.device, dtype: torch.dtype, init_scale: Any) -> torch.Tensor:
        P = self.initialize_P(size, device, dtype, self._inverse)
        if init_scale != "auto":
            P.mul_(1 / init_scale if self._inverse else init_scale)
        return P

    def reset_P(self, P: torch.Tensor, s: torch.Tensor, y: torch.Tensor, init_scale: Any, state: dict[str, Any]) -> None:
        """Resets ``P`` in place to its initial value (scaled from ``s``, ``y`` with ``"auto"``)."""
        P.copy_(self.initial_P(P.shape[0], P.device, P.dtype, init_scale))
        if init_scale == "auto":
            sc = self.auto_initial_scale(s, y)
            if sc is not None:
                P.mul_(sc)

    def precondition(self, P: torch.Tensor, g: torch.Tensor, state: dict[str, Any], setting: Mapping[str, Any]) -> torch.Tensor:
        """The step for ``g``: ``H g`` or ``B^-1 g`` (elementwise for diagonal ``P``)."""
        if P.ndim == 1:
            return P * g if self._inverse else g / P
        return P @ g if self._inverse else safe_solve(P, g)

    # ------------------------------------------------------------------ blocks
    def _blocks(self, objective: Objective, tensors: Sequence[torch.Tensor]):
        """``(vector, param vector, state, setting)`` for every block (one, or one per parameter)."""
        params = objective.params
        if self._concat_params:
            vec = torch.cat([t.reshape(-1) for t in tensors])
            fake = self.get_fake_params(_CONCAT, [vec])[0]
            pvec = None if not params else torch.cat([p.detach().reshape(-1) for p in params])
            return [(vec, pvec, self.state[fake], self.settings[params[0]])]
        return [(t.reshape(-1), p.detach().reshape(-1), self.state[p], self.settings[p]) for t, p in zip(tensors, params)]

    def update_states(self, objective: Objective, states: Any, settings: Any) -> None:
        tensors = objective.peek_updates()  # first: the gradient evaluation also gives the loss
        loss = objective.get_loss(False) if self._uses_loss else None
        for g, p, state, setting in self._blocks(objective, tensors):
            self._update_block(g, p, loss, state, setting)

    def _update_block(self, g: torch.Tensor, p: torch.Tensor, loss: Any, state: dict[str, Any], setting: Mapping[str, Any]) -> None:
        key = self._key
        step = state.get("step", 0) + 1
        state["step"] = step
        if self._uses_loss:
            state["f_prev"] = state.get("f")
            state["f"] = None if loss is None else (loss.detach().clone() if isinstance(loss, torch.Tensor) else loss)
        P = state.get(key)
        if P is None:
            state[key] = self.initial_P(g.numel(), g.device, g.dtype, setting["init_scale"])
            state["p_prev"] = p.clone()
            state["g_prev"] = g.clone()
            state["scaled"] = False
            return

        p_prev, g_prev = state["p_prev"], state["g_prev"]
        s = p - p_prev
        y = g - g_prev
        state["p_prev"] = p.clone()
        state["g_prev"] = g.clone()

        init_scale = setting["init_scale"]
        interval = setting["restart_interval"]
        if interval == "auto":
            interval = g.numel() + 1
        if interval is not None and step % int(interval) == 0:
            self.reset_P(P, s, y, init_scale, state)
            return

        ptol, gtol = setting["ptol"], setting["gtol"]
        if ptol is not None and s.numel() > 0 and float(s.abs().max()) < ptol:
            if setting["ptol_restart"]:
                self.reset_P(P, s, y, init_scale, state)
            return
        if gtol is not None and y.numel() > 0 and float(y.abs().max()) < gtol:
            return

        self._just_scaled = False
        if init_scale == "auto" and not state["scaled"]:
            sc = self.auto_initial_scale(s, y)
            if sc is not None:
                P.mul_(sc)
                state["scaled"] = True
                self._just_scaled = True

        P_old = P.clone() if setting["beta"] is not None else None
        if self._inverse:
            P_new = self.update_H(P, s, y, p, g, p_prev, g_prev, state, setting)
        else:
            P_new = self.update_B(P, s, y, p, g, p_prev, g_prev, state, setting)
        if P_old is not None:
            beta = setting["beta"]
            P_new = P_old.mul_(beta).add_(P_new, alpha=1 - beta)
        state[key] = P_new

    def apply_states(self, objective: Objective, states: Any, settings: Any) -> Objective:
        tensors = objective.peek_updates()
        outs = []
        for g, _, state, setting in self._blocks(objective, tensors):
            P = state[self._key]
            d = self.precondition(P, g, state, setting)
            if setting["scale_first"] and state.get("step", 0) <= 1:
                l1 = float(g.abs().sum())
                if l1 > 1:
                    d = d / l1
            outs.append(d)
        if self._concat_params:
            out = vec_to_tensors(outs[0], objective.params)
        else:
            out = [d.view_as(t) for d, t in zip(outs, tensors)]
        objective.set_updates(out, owned=True)
        return objective

    # ------------------------------------------------------------------ get_H
    def _operator(self, P: torch.Tensor, state: dict[str, Any]) -> LinearOperator:
        if P.ndim == 1:
            return Diagonal(1 / P) if self._inverse else Diagonal(P)
        return DenseInverse(P) if self._inverse else Dense(P)

    def get_H(self, objective: Objective | None = None) -> LinearOperator | None:
        """The Hessian approximation ``B`` over all parameters as one vector (``H^-1`` for inverse methods).

        ``Dense`` / ``DenseInverse`` for full-matrix methods, ``Diagonal`` for diagonal ones, a
        ``BlockDiagonal`` of those with ``concat_params=False``; None before the first step.
        """
        if self._concat_params:
            fakes = self._fake_params.get(_CONCAT)
            if not fakes:
                return None
            state = self.state[fakes[0]] if fakes[0] in self.state else {}
            P = state.get(self._key)
            return None if P is None else self._operator(P, state)
        params = objective.params if objective is not None else list(self.state.keys())
        blocks = []
        for p in params:
            state = self.state[p] if p in self.state else {}
            P = state.get(self._key)
            if P is None:
                return None
            blocks.append(self._operator(P, state))
        return BlockDiagonal(blocks) if blocks else None


def rank1_denominator_ok(z: torch.Tensor, y: torch.Tensor, zy: torch.Tensor | float, tol: float) -> bool:
    """Whether ``|z^T y| > tol ||z|| ||y||`` (the angle test used by rank-one updates)."""
    zy = float(zy)
    return math.isfinite(zy) and abs(zy) > tol * float(z.norm()) * float(y.norm()) and zy != 0
