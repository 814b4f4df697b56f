"""Resilient propagation (Rprop) and the sign-change rules it is made of.

Riedmiller & Braun, 1993, "A direct adaptive method for faster backpropagation learning: the RPROP
algorithm", IEEE International Conference on Neural Networks, pp. 586-591, doi:10.1109/ICNN.1993.298623.

Each weight keeps its own step size. Writing ``u_t`` for the input of the module (the gradient when
the module comes first) and ``u_{t-1}`` for the remembered previous input::

    eta_t = clamp(eta_{t-1} * nplus,  lb, ub)   where u_t * u_{t-1} > 0   (same sign)
    eta_t = clamp(eta_{t-1} * nminus, lb, ub)   where u_t * u_{t-1} < 0   (sign change)
    eta_t = eta_{t-1}                           elsewhere (a zero on either side)

The modules below expose the pieces separately: the per-weight rates themselves
(:class:`SignConsistencyLRs`), the input scaled by them (:class:`ScaleLRBySignChange`), the 0/1
mask of sign agreement (:class:`SignConsistencyMask`) and the weight-backtracking rule
(:class:`BacktrackOnSignChange`). :class:`Rprop` combines them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.transform import TensorTransform


def _rate_multipliers(prod: torch.Tensor, nplus: float, nminus: float) -> torch.Tensor:
    """``nplus`` where ``prod > 0``, ``nminus`` where ``prod < 0`` and 1 where it is zero."""
    m = torch.ones_like(prod)
    m.masked_fill_(prod > 0, nplus)
    m.masked_fill_(prod < 0, nminus)
    return m


def _adapt_rates(rates: list[torch.Tensor], cur: list[torch.Tensor], prev: list[torch.Tensor],
                 settings: Sequence[Mapping[str, Any]]) -> list[torch.Tensor]:
    """Multiplies each per-weight rate by ``nplus`` / ``nminus`` by sign agreement, then clamps it
    to ``[lb, ub]`` (``None`` bounds are open). Returns the products ``cur * prev``."""
    prods = torch._foreach_mul(cur, prev)
    for r, prod, s in zip(rates, prods, settings):
        r.mul_(_rate_multipliers(prod, s["nplus"], s["nminus"]))
        lb, ub = s["lb"], s["ub"]
        if lb is not None or ub is not None:
            r.clamp_(lb, ub)
    return prods


class _SignChangeBase(TensorTransform):
    """Shared plumbing: reads the tracked tensors (input or gradient) and keeps per-weight state."""

    def _tracked(self, tensors: list[torch.Tensor], grads: list[torch.Tensor] | None, use_grad: bool) -> list[torch.Tensor]:
        if use_grad:
            assert grads is not None
            return grads
        return tensors

    def _init_rates(self, params: list[torch.Tensor], states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> list[torch.Tensor]:
        out = []
        for p, st, s in zip(params, states, settings):
            r = st.get("rates")
            if r is None:
                r = st["rates"] = torch.full_like(p, s["alpha"])
            out.append(r)
        return out

    def _prev(self, params: list[torch.Tensor], states: list[dict[str, Any]]) -> list[torch.Tensor]:
        out = []
        for p, st in zip(params, states):
            v = st.get("prev")
            if v is None:
                v = st["prev"] = torch.zeros_like(p)
            out.append(v)
        return out


class Rprop(_SignChangeBase):
    """Resilient propagation: sign of the input times a per-weight step size that adapts to sign changes.

    With the per-weight step sizes ``eta`` of the module docstring (initialised to ``alpha``)::

        update = sign(u_t) * eta_t

    Where the sign changed, the step is not taken: with ``backtrack=True`` the previous step of that
    weight is undone (``update = -update_{t-1}``, the "weight-backtracking" of the paper), with
    ``backtrack=False`` the update is zero there. In both cases the remembered input is set to zero
    for those weights, so their step size is left unchanged on the next step. With
    ``backtrack=False`` and ``tz.m.Rprop(alpha=lr), tz.m.LR(1)`` this is ``torch.optim.Rprop(lr=lr)``.

    Riedmiller & Braun, 1993, "A direct adaptive method for faster backpropagation learning: the
    RPROP algorithm", doi:10.1109/ICNN.1993.298623.

    Args:
        nplus: step size multiplier when the sign did not change.
        nminus: step size multiplier when the sign changed.
        lb: lower bound of the step sizes (None: unbounded).
        ub: upper bound of the step sizes (None: unbounded).
        backtrack: undo the previous step of weights whose sign changed (else skip them).
        alpha: initial step size of every weight.
    """

    inplace = False

    def __init__(self, nplus: float = 1.2, nminus: float = 0.5, lb: float = 1e-6, ub: float = 50, backtrack=True, alpha: float = 1):
        super().__init__(dict(nplus=nplus, nminus=nminus, lb=lb, ub=ub, backtrack=backtrack, alpha=alpha))

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        rates = self._init_rates(params, states, settings)
        prev = self._prev(params, states)
        prods = _adapt_rates(rates, tensors, prev, settings)
        out = torch._foreach_sign(tensors)
        torch._foreach_mul_(out, rates)
        for i, (t, o, prod, st, s) in enumerate(zip(tensors, out, prods, states, settings)):
            changed = prod < 0
            if s["backtrack"]:
                last = st.get("last_update")
                if last is None:
                    o.masked_fill_(changed, 0)
                    st["last_update"] = o.clone()
                else:
                    o.copy_(torch.where(changed, last.neg(), o))
                    last.copy_(o)
            else:
                o.masked_fill_(changed, 0)
            p = prev[i]
            p.copy_(t)
            p.masked_fill_(changed, 0)
        return out


class ScaleLRBySignChange(_SignChangeBase):
    """Multiplies the input by per-weight learning rates that grow while the sign holds and shrink when it flips.

    The rates start at ``alpha`` and follow the rule of the module docstring, comparing the sign of
    the current input (or gradient with ``use_grad=True``) with the previous one::

        update = u_t * eta_t

    This is the step-size half of Rprop (Riedmiller & Braun, 1993, doi:10.1109/ICNN.1993.298623).

    Args:
        nplus: rate multiplier when the sign did not change.
        nminus: rate multiplier when the sign changed.
        lb: lower bound of the rates (None: unbounded).
        ub: upper bound of the rates (None: unbounded).
        alpha: initial rate.
        use_grad: track sign changes of the gradient instead of the input.
    """

    def __init__(self, nplus: float = 1.2, nminus: float = 0.5, lb=1e-6, ub=50.0, alpha=1.0, use_grad=False):
        super().__init__(dict(nplus=nplus, nminus=nminus, lb=lb, ub=ub, alpha=alpha), uses_grad=use_grad)
        self._use_grad = use_grad

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        cur = self._tracked(tensors, grads, self._use_grad)
        rates = self._init_rates(params, states, settings)
        prev = self._prev(params, states)
        _adapt_rates(rates, cur, prev, settings)
        torch._foreach_copy_(prev, cur)
        torch._foreach_mul_(tensors, rates)
        return tensors


class SignConsistencyLRs(_SignChangeBase):
    """Outputs the per-weight learning rates of Rprop instead of an update.

    Rates start at ``alpha``; where two consecutive inputs agree in sign the rate is multiplied by
    ``nplus``, where they disagree by ``nminus``, and it is kept in ``[lb, ub]``. The output
    (the rates themselves) can multiply another module's update, e.g.
    ``tz.m.Mul(tz.m.SignConsistencyLRs())`` scales the gradient by them.

    Riedmiller & Braun, 1993, doi:10.1109/ICNN.1993.298623.

    Args:
        nplus: rate multiplier when the sign did not change.
        nminus: rate multiplier when the sign changed.
        lb: lower bound of the rates (None: unbounded).
        ub: upper bound of the rates (None: unbounded).
        alpha: initial rate.
    """

    inplace = False

    def __init__(self, nplus: float = 1.2, nminus: float = 0.5, lb: float | None = 1e-6, ub: float | None = 50, alpha: float = 1):
        super().__init__(dict(nplus=nplus, nminus=nminus, lb=lb, ub=ub, alpha=alpha))

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        rates = self._init_rates(params, states, settings)
        prev = self._prev(params, states)
        _adapt_rates(rates, tensors, prev, settings)
        torch._foreach_copy_(prev, tensors)
        return [r.clone() for r in rates]


class SignConsistencyMask(_SignChangeBase):
    """Outputs a 0/1 mask: 0 where the input changed sign since the previous step, 1 elsewhere.

    ``mask = 1[u_t * u_{t-1} >= 0]`` (the first step, and weights where either side is zero, count
    as consistent). ``tz.m.Mul(tz.m.SignConsistencyMask())`` skips the weights whose gradient
    flipped, as Rprop does (Riedmiller & Braun, 1993, doi:10.1109/ICNN.1993.298623).
    """

    inplace = False

    def __init__(self):
        super().__init__()

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        prev = self._prev(params, states)
        prods = torch._foreach_mul(tensors, prev)
        out = [(p >= 0).to(t.dtype) for p, t in zip(prods, tensors)]
        torch._foreach_copy_(prev, tensors)
        return out


class BacktrackOnSignChange(_SignChangeBase):
    """Weight backtracking of Rprop: where the sign flipped, undo the previous step or skip this one.

    The sign of the input (or of the gradient with ``use_grad=True``) is compared with the
    remembered previous one. Where it changed::

        backtrack=True:   update = -update_{t-1}   (moves the weight back to where it was)
        backtrack=False:  update = 0

    and the remembered value of those weights is reset to zero, so the next step compares with
    nothing there (as in Rprop). Elsewhere the input passes unchanged.

    Riedmiller & Braun, 1993, doi:10.1109/ICNN.1993.298623.

    Args:
        use_grad: track sign changes of the gradient instead of the input.
        backtrack: undo the previous update where the sign changed (else zero the update there).
    """

    def __init__(self, use_grad=False, backtrack=True):
        super().__init__(dict(backtrack=backtrack), uses_grad=use_grad)
        self._use_grad = use_grad

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        cur = self._tracked(tensors, grads, self._use_grad)
        prev = self._prev(params, states)
        prods = torch._foreach_mul(cur, prev)
        for i, (t, c, prod, st, s) in enumerate(zip(tensors, cur, prods, states, settings)):
            changed = prod < 0
            p = prev[i]
            p.copy_(c)
            p.masked_fill_(changed, 0)
            if s["backtrack"]:
                last = st.get("last_update")
                if last is None:
                    st["last_update"] = t.clone()
                else:
                    t.copy_(torch.where(changed, last.neg(), t))
                    last.copy_(t)
            else:
                t.masked_fill_(changed, 0)
        return tensors
