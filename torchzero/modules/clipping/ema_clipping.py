"""Clipping by an exponential moving average of past updates: ClipNormByEMA, NormalizeByEMA, ClipValueByEMA.

The average is updated from the incoming update; with ``inner`` the incoming update then goes
through the inner module(s), and the result of those is what gets clipped.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import TensorTransform
from ...utils.foreach import scalar_or_list
from ...utils.norms import Ord, canonical_ord, global_norm, tensor_norms


def _lerp_(bufs: list[torch.Tensor], tensors: list[torch.Tensor], beta: list[float]) -> None:
    """``b <- beta * b + (1 - beta) * t``."""
    b = scalar_or_list(beta)
    if isinstance(b, list):
        torch._foreach_mul_(bufs, b)
        torch._foreach_add_(bufs, torch._foreach_mul(tensors, [1 - x for x in b]))
    else:
        torch._foreach_lerp_(bufs, tensors, 1 - b)


class ClipNormByEMA(TensorTransform):
    """Clips the norm of the update to the norm of an exponential moving average of past updates.

    With incoming update ``u_t``::

        m_t = beta * m_{t-1} + (1 - beta) * u_t          (m_0 filled with ``init``)
        if max_ema_growth:  m_t <- m_t * c / ||m_t||  where ||m_t|| > c = max(g * ||m_{t-1}||, min_norm)
        u_t <- u_t * ||m_t|| / ||u_t||                   where ||u_t|| > ||m_t||

    (no growth limit on the first step). The norms are per parameter, or of all parameters as one
    vector with ``tensorwise=False``. An update much larger than the recent ones is thus shrunk to
    their typical size, a simple adaptive alternative to :class:`ClipNorm`'s fixed threshold.

    Args:
        beta: decay of the moving average.
        ord: the norm (see :class:`ClipNorm`).
        tensorwise: norms per parameter; otherwise over all parameters together.
        max_ema_growth: ``g``, the most the average's norm may grow per step (None: no limit).
        init: value the moving average starts from.
        min_norm: the growth limit never goes below this.
        inner: module(s) applied to the update before it is clipped (the average is of the update
            before them).
    """

    NORMALIZE = False

    def __init__(self, beta: float = 0.99, ord: Ord = 2, tensorwise: bool = True, max_ema_growth: float | None = 1.5,
                 init: float = 0.0, min_norm: float = 1e-6, inner: Chainable | None = None):
        canonical_ord(ord)
        super().__init__(dict(beta=beta, ord=ord, tensorwise=tensorwise, max_ema_growth=max_ema_growth, init=init,
                              min_norm=min_norm), inner=inner)

    def multi_tensor_update(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                            states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        beta, init = self.settings.values(params, "beta", "init")
        ema = []
        for p, t, i in zip(params, tensors, init):
            st = self.state[p]
            e = st.get("ema")
            if e is None:
                e = st["ema"] = torch.full_like(t, float(i))
            ema.append(e)
        _lerp_(ema, tensors, beta)

        s = settings[0]
        ord = canonical_ord(s["ord"])
        growth, min_norm = s["max_ema_growth"], s["min_norm"]
        if s["tensorwise"]:
            ema_n = torch.stack(tensor_norms(ema, ord))
            u_n = torch.stack(tensor_norms(tensors, ord))
            prev = [self.state[p].get("ema_norm") for p in params]
            if growth is not None and all(x is not None for x in prev):
                ema_n = self._limit(ema, ema_n, torch.stack(prev), growth, min_norm)
            for p, n, f in zip(params, ema_n.unbind(0), self._factor(ema_n, u_n).unbind(0)):
                self.state[p]["ema_norm"] = n
                self.state[p]["factor"] = f
        else:
            ema_n = global_norm(ema, ord)
            u_n = global_norm(tensors, ord)
            prev_g = self.global_state.get("ema_norm")
            if growth is not None and prev_g is not None:
                ema_n = self._limit(ema, ema_n, prev_g, growth, min_norm)
            self.global_state["ema_norm"] = ema_n
            self.global_state["factor"] = self._factor(ema_n, u_n)

    @staticmethod
    def _limit(ema: list[torch.Tensor], ema_n: torch.Tensor, prev: torch.Tensor, growth: float, min_norm: float) -> torch.Tensor:
        """Scales the averages down where their norm grew past the limit; returns the new norms."""
        cap = (prev * growth).clamp_min(min_norm)
        over = ema_n > cap
        scale = torch.where(over, cap / ema_n, torch.ones_like(ema_n))
        if scale.ndim == 0:
            torch._foreach_mul_(ema, scale)
        else:
            torch._foreach_mul_(ema, list(scale.unbind(0)))
        return torch.where(over, cap, ema_n)

    def _factor(self, ema_n: torch.Tensor, u_n: torch.Tensor) -> torch.Tensor:
        ones = torch.ones_like(u_n)
        if self.NORMALIZE:
            return torch.where(u_n > 0, ema_n / u_n, ones)
        return torch.where(u_n > ema_n, ema_n / u_n, ones)

    def apply_states(self, objective: Objective, states: Any, settings: Any) -> Objective:
        params = objective.params
        upd = objective.peek_updates()
        if self.settings[params[0]]["tensorwise"]:
            out = torch._foreach_mul(upd, [self.state[p]["factor"] for p in params])
        else:
            out = torch._foreach_mul(upd, self.global_state["factor"])
        objective.set_updates(list(out), owned=True)
        return objective


class NormalizeByEMA(ClipNormByEMA):
    """Rescales the update to the norm of an exponential moving average of past updates: as
    :class:`ClipNormByEMA`, but ``u_t <- u_t * ||m_t|| / ||u_t||`` always (smaller updates are
    scaled up too), so the step length follows the smoothed update length.

    Args:
        beta: decay of the moving average.
        ord: the norm (see :class:`ClipNorm`).
        tensorwise: norms per parameter; otherwise over all parameters together.
        max_ema_growth: the most the average's norm may grow per step (None: no limit).
        init: value the moving average starts from.
        min_norm: the growth limit never goes below this.
        inner: module(s) applied to the update before it is rescaled.
    """

    NORMALIZE = True


class ClipValueByEMA(TensorTransform):
    """Clips each element of the update to the magnitude of an exponential moving average of past
    update magnitudes::

        a_t = beta * a_{t-1} + (1 - beta) * |u_t|        (a_0 = init * |u_1|)
        u_t <- clamp(u_t, -a_t, a_t)

    Args:
        beta: decay of the moving average.
        init: the average starts at ``init`` times the first update's magnitudes.
        inner: module(s) applied to the update before it is clipped (the average is of the update
            before them).
        exp_avg_tfm: module(s) applied to a copy of the average before it is used as the bound.
    """

    inplace = False

    def __init__(self, beta: float = 0.99, init: float = 0, inner: Chainable | None = None, exp_avg_tfm: Chainable | None = None):
        super().__init__(dict(beta=beta, init=init), inner=inner)
        if exp_avg_tfm is not None:
            self.set_child("exp_avg", exp_avg_tfm)

    def multi_tensor_update(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                            states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        beta, init = self.settings.values(params, "beta", "init")
        mags = torch._foreach_abs(tensors)
        ema = []
        for p, m, i in zip(params, mags, init):
            st = self.state[p]
            e = st.get("ema_abs")
            if e is None:
                e = st["ema_abs"] = m * float(i)
            ema.append(e)
        _lerp_(ema, mags, beta)

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: Any, settings: Any) -> list[torch.Tensor]:
        bound = [self.state[p]["ema_abs"] for p in params]
        if "exp_avg" in self.children:
            bound = self.inner_step_tensors("exp_avg", bound, clone=True, params=params)
        out = torch._foreach_maximum(tensors, torch._foreach_neg(bound))
        torch._foreach_minimum_(out, bound)
        return list(out)
