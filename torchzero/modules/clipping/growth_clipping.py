"""Limiting how fast the update grows from one step to the next: ClipNormGrowth, ClipValueGrowth.

Both track a reference magnitude ``r`` (of the norm, or of each element). The first update passes
unchanged and sets ``r``; afterwards the update's magnitude may be at most::

    bound = min(r + add, max(r, min_value) * mul)        (either term left out when it is None)

and then ``r`` becomes the magnitude that was let through — or, with ``max_decay``, at least
``r / max_decay``, so that one tiny update does not pin the bound near zero for many steps.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.objective import Objective
from ...core.transform import TensorTransform
from ...utils.norms import canonical_ord, global_norm, tensor_norms


def _bound(r: torch.Tensor, add: float | None, mul: float | None, min_value: float | None) -> torch.Tensor | None:
    b = None
    if mul is not None:
        base = r if min_value is None else r.clamp_min(min_value)
        b = base * mul
    if add is not None:
        a = r + add
        b = a if b is None else torch.minimum(a, b)
    return b


def _track(passed: torch.Tensor, r: torch.Tensor | None, max_decay: float | None) -> torch.Tensor:
    if max_decay is None or r is None:
        return passed
    return torch.maximum(passed, r / max_decay)


class ClipNormGrowth(TensorTransform):
    """Clips the growth of the update's norm: ``||u_t|| <= min(r + add, max(r, min_value) * mul)``
    where ``r`` is the norm let through at the previous step (see the module docstring for
    ``max_decay``). A sudden spike in the gradient norm is cut to a bounded multiple of the last
    one, while steady growth is still allowed.

    Args:
        add: additive limit (None: none).
        mul: multiplicative limit (None: none).
        min_value: the multiplicative limit uses at least this as the previous norm, so it can
            recover from a norm of zero.
        max_decay: the tracked norm falls by at most this factor per step (None: no bound).
        ord: the norm (see :class:`ClipNorm`).
        tensorwise: norms per parameter; otherwise of all parameters as one vector.
    """

    inplace = False

    def __init__(self, add: float | None = None, mul: float | None = 1.5, min_value: float | None = 1e-4,
                 max_decay: float | None = 2, ord: float = 2, tensorwise: bool = True):
        canonical_ord(ord)
        super().__init__(dict(add=add, mul=mul, min_value=min_value, max_decay=max_decay, ord=ord, tensorwise=tensorwise))

    def _step_norm(self, n: torch.Tensor, r: torch.Tensor | None, s: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(factor for the update, new tracked norm) given the update norm ``n`` and tracked ``r``."""
        if r is None:
            return torch.ones_like(n), n
        b = _bound(r, s["add"], s["mul"], s["min_value"])
        if b is None:
            return torch.ones_like(n), _track(n, r, s["max_decay"])
        over = n > b
        factor = torch.where(over, b / n, torch.ones_like(n))
        passed = torch.where(over, b, n)
        return factor, _track(passed, r, s["max_decay"])

    def multi_tensor_update(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                            states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        s = settings[0]
        ord = canonical_ord(s["ord"])
        if s["tensorwise"]:
            norms = tensor_norms(tensors, ord)
            refs = [self.state[p].get("ref") for p in params]
            if all(se is s for se in settings) and all(r is not None for r in refs):
                # the usual case: one set of settings, every parameter seen before; all at once
                factor, ref = self._step_norm(torch.stack(norms), torch.stack(refs), s)
                for p, f, r in zip(params, factor.unbind(0), ref.unbind(0)):
                    st = self.state[p]
                    st["factor"], st["ref"] = f, r
                return
            for p, n, r, se in zip(params, norms, refs, settings):
                st = self.state[p]
                st["factor"], st["ref"] = self._step_norm(n, r, se)
        else:
            n = global_norm(tensors, ord)
            self.global_state["factor"], self.global_state["ref"] = self._step_norm(n, self.global_state.get("ref"), s)

    def apply_states(self, objective: Objective, states: Any, settings: Any) -> Objective:
        params = objective.params
        upd = objective.peek_updates()
        if self.settings[params[0]]["tensorwise"]:
            out = torch._foreach_mul(upd, [self.state[p]["factor"] for p in params])
        else:
            out = torch._foreach_mul(upd, self.global_state["factor"])
        objective.set_updates(list(out), owned=True)
        return objective


class ClipValueGrowth(TensorTransform):
    """Clips the growth of each element's magnitude: ``|u_t| <= min(r + add, max(r, min_value) * mul)``
    element-wise, where ``r`` is the magnitude let through at the previous step (see the module
    docstring for ``max_decay``).

    Args:
        add: additive limit (None: none).
        mul: multiplicative limit (None: none).
        min_value: the multiplicative limit uses at least this as the previous magnitude.
        max_decay: the tracked magnitude falls by at most this factor per step (None: no bound).
    """

    inplace = False

    def __init__(self, add: float | None = None, mul: float | None = 1.5, min_value: float | None = 1e-4,
                 max_decay: float | None = 2):
        super().__init__(dict(add=add, mul=mul, min_value=min_value, max_decay=max_decay))

    def multi_tensor_update(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                            states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        refs = [self.state[p].get("ref") for p in params]
        s0 = settings[0]
        if all(s is s0 for s in settings) and all(r is not None for r in refs):
            # the usual case: one set of settings, every parameter seen before; foreach kernels
            mags = torch._foreach_abs(tensors)
            bound = None
            if s0["mul"] is not None:
                bound = torch._foreach_clamp_min(refs, s0["min_value"]) if s0["min_value"] is not None else [r.clone() for r in refs]
                torch._foreach_mul_(bound, s0["mul"])
            if s0["add"] is not None:
                a = torch._foreach_add(refs, s0["add"])
                bound = a if bound is None else torch._foreach_minimum(a, bound)
            passed = mags if bound is None else torch._foreach_minimum(mags, bound)
            if s0["max_decay"] is not None:
                torch._foreach_maximum_(passed, torch._foreach_div(refs, s0["max_decay"]))
            for p, b, r in zip(params, bound if bound is not None else [None] * len(params), passed):
                st = self.state[p]
                st["bound"], st["ref"] = b, r
            return
        for p, t, s in zip(params, tensors, settings):
            st = self.state[p]
            r = st.get("ref")
            mag = t.abs()
            if r is None:
                st["bound"] = None
                st["ref"] = mag
                continue
            b = _bound(r, s["add"], s["mul"], s["min_value"])
            st["bound"] = b
            passed = mag if b is None else torch.minimum(mag, b)
            st["ref"] = _track(passed, r, s["max_decay"])

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: Any, settings: Any) -> list[torch.Tensor]:
        bounds = [self.state[p]["bound"] for p in params]
        if all(b is not None for b in bounds):
            out = torch._foreach_minimum(tensors, bounds)
            torch._foreach_maximum_(out, torch._foreach_neg(bounds))
            return list(out)
        out = []
        for t, b in zip(tensors, bounds):
            out.append(t.clone() if b is None else torch.maximum(torch.minimum(t, b), -b))
        return out
