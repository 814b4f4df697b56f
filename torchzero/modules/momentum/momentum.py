"""Exponential moving averages and momentum: EMA, HeavyBall, NAG."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from ...core.objective import Objective
from ...core.transform import TensorTransform
from ...utils.foreach import scalar_or_list

_BUF = "momentum_buffer"


def _check_init(ema_init: str) -> None:
    if ema_init not in ("zeros", "update"):
        raise ValueError(f"ema_init must be 'zeros' or 'update', got {ema_init!r}")


def _push(module: TensorTransform, tensors: list[torch.Tensor], params: list[torch.Tensor], beta: list[float],
          damp: list[float], lerp: list[bool], init: str | list[str]) -> list[torch.Tensor]:
    """Updates the buffers ``b <- beta * b + c * u`` (``c = (1 - dampening) * ((1 - beta) if lerp else 1)``)
    and returns them. Missing buffers start as zeros or, with ``init='update'``, as ``u``."""
    inits = init if isinstance(init, list) else [init] * len(params)
    bufs = []
    for p, t, ini in zip(params, tensors, inits):
        st = module.state[p]
        b = st.get(_BUF)
        if b is None:
            b = st[_BUF] = t.clone() if ini == "update" else torch.zeros_like(t)
        bufs.append(b)
    coef = scalar_or_list([(1 - d) * ((1 - m) if l else 1) for m, d, l in zip(beta, damp, lerp)])
    torch._foreach_mul_(bufs, scalar_or_list(beta))
    if isinstance(coef, list):
        torch._foreach_add_(bufs, torch._foreach_mul(tensors, coef))
    else:
        torch._foreach_add_(bufs, tensors, alpha=coef)
    return bufs


class EMA(TensorTransform):
    """Exponential moving average of the update.

    With incoming update ``u_t``, momentum ``beta`` and dampening ``d``::

        m_t = beta * m_{t-1} + (1 - d) * (1 - beta) * u_t      (lerp=True)
        m_t = beta * m_{t-1} + (1 - d) * u_t                   (lerp=False)
        output = m_t / (1 - beta^t)                             (debias=True, as in Adam)

    ``m_0`` is zero (``ema_init='zeros'``) or the first update (``ema_init='update'``).

    Args:
        momentum: decay ``beta`` of the average.
        dampening: ``d``, scales the contribution of each new update by ``1 - d``.
        debias: divide by ``1 - beta^t`` (Kingma & Ba, 2015, "Adam", arXiv:1412.6980).
        lerp: linear interpolation (an exponential moving average); otherwise the new update is
            added with weight ``1 - d``, which is Polyak's momentum.
        ema_init: ``'zeros'`` or ``'update'``.
    """

    inplace = False

    def __init__(self, momentum: float = 0.9, dampening: float = 0, debias: bool = False, lerp: bool = True,
                 ema_init: Literal["zeros", "update"] = "zeros"):
        _check_init(ema_init)
        super().__init__(dict(momentum=momentum, dampening=dampening, debias=debias, lerp=lerp, ema_init=ema_init))

    def multi_tensor_update(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                            states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        beta, damp, lerp, init = self.settings.values(params, "momentum", "dampening", "lerp", "ema_init")
        _push(self, tensors, params, beta, damp, lerp, init)
        self.global_state["step"] = self.global_state.get("step", 0) + 1

    def apply_states(self, objective: Objective, states: Any, settings: Any) -> Objective:
        params = objective.params
        bufs = [self.state[p][_BUF] for p in params]
        beta, debias = self.settings.values(params, "momentum", "debias")
        if any(debias):
            t = self.global_state.get("step", 1)
            corr = scalar_or_list([1 / (1 - b ** t) if d else 1.0 for b, d in zip(beta, debias)])
            objective.set_updates(torch._foreach_mul(bufs, corr), owned=True)
        else:
            # the buffers themselves; whoever wants to modify them in place copies them first
            objective.set_updates(bufs, owned=False)
        return objective


class HeavyBall(EMA):
    """Polyak's momentum (heavy ball; Polyak, 1964, "Some methods of speeding up the convergence
    of iteration methods", USSR Comp. Math. & Math. Phys. 4(5)).

    ``m_t = beta * m_{t-1} + (1 - d) * u_t``, output ``m_t``; this is :class:`EMA` with ``lerp=False``
    and, by default, ``m_0 = u_1`` (so the first output is ``(beta + 1 - d) * u_1``). With
    ``ema_init='zeros'`` and no dampening, ``HeavyBall(beta), LR(lr)`` takes the same steps as
    ``torch.optim.SGD(lr=lr, momentum=beta)``.

    Args:
        momentum: ``beta``.
        dampening: ``d``.
        debias: divide by ``1 - beta^t``.
        lerp: use ``(1 - d)(1 - beta)`` as the weight of the new update (an exponential moving average).
        ema_init: ``'update'`` (default) or ``'zeros'``.
    """

    def __init__(self, momentum: float = 0.9, dampening: float = 0, debias: bool = False, lerp: bool = False,
                 ema_init: Literal["zeros", "update"] = "update"):
        super().__init__(momentum=momentum, dampening=dampening, debias=debias, lerp=lerp, ema_init=ema_init)


class NAG(TensorTransform):
    """Nesterov's accelerated gradient in the momentum form of Sutskever et al. (2013, "On the
    importance of initialization and momentum in deep learning", ICML) — Nesterov (1983), "A method
    for solving the convex programming problem with convergence rate O(1/k^2)".

    With ``m_0 = 0``::

        m_t = beta * m_{t-1} + (1 - d) * u_t            output = u_t + beta * m_t     (lerp=False)
        m_t = beta * m_{t-1} + (1 - d)(1 - beta) u_t    output = u_t + m_t            (lerp=True)

    Without dampening, ``NAG(beta), LR(lr)`` takes the same steps as
    ``torch.optim.SGD(lr=lr, momentum=beta, nesterov=True)``.

    Args:
        momentum: ``beta``.
        dampening: ``d``.
        lerp: keep an exponential moving average instead of a sum.
    """

    inplace = False

    def __init__(self, momentum: float = 0.9, dampening: float = 0, lerp: bool = False):
        super().__init__(dict(momentum=momentum, dampening=dampening, lerp=lerp))

    def multi_tensor_update(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                            states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        beta, damp, lerp = self.settings.values(params, "momentum", "dampening", "lerp")
        _push(self, tensors, params, beta, damp, lerp, "zeros")

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> list[torch.Tensor]:
        bufs = [self.state[p][_BUF] for p in params]
        beta, lerp = self.settings.values(params, "momentum", "lerp")
        w = scalar_or_list([1.0 if l else b for b, l in zip(beta, lerp)])
        if isinstance(w, list):
            return torch._foreach_add(tensors, torch._foreach_mul(bufs, w))
        return torch._foreach_add(tensors, bufs, alpha=w)
