"""The exponential moving averages of squared updates used by Adam-like methods, as functions.

Exposed as ``tz.m.EMA_SQ_FN`` and ``tz.m.SQRT_EMA_SQ_FN`` and registered for specs.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ...core.spec import register_callable
from ...utils.foreach import map_scalar


def ema_sq_(tensors: Sequence[torch.Tensor], exp_avg_sq_: Sequence[torch.Tensor], beta: float | Sequence[float],
            max_exp_avg_sq_: Sequence[torch.Tensor] | None, pow: float = 2) -> list[torch.Tensor]:
    """Updates ``exp_avg_sq_`` in place with the EMA of ``|tensors|^pow`` and returns it.

    ``v <- beta * v + (1 - beta) * |x|^pow``. When ``max_exp_avg_sq_`` is given it is updated in
    place with ``max(v_max, v)`` (AMSGrad; Reddi, Kale & Kumar, 2018, "On the Convergence of Adam
    and Beyond", arXiv:1904.09237) and returned instead. ``beta`` is a number or one per tensor.
    """
    tensors, v = list(tensors), list(exp_avg_sq_)
    if isinstance(beta, (list, tuple)):
        beta = list(beta)
    one_minus = map_scalar(lambda b: 1 - b, beta)
    torch._foreach_mul_(v, beta)
    if pow == 2:
        torch._foreach_addcmul_(v, tensors, tensors, one_minus)
    else:
        powed = torch._foreach_pow(torch._foreach_abs(tensors), pow)
        torch._foreach_mul_(powed, one_minus)
        torch._foreach_add_(v, powed)
    if max_exp_avg_sq_ is not None:
        vmax = list(max_exp_avg_sq_)
        torch._foreach_maximum_(vmax, v)
        return vmax
    return v


def root_debiased(v: Sequence[torch.Tensor], beta: Any, debiased: bool, step: int, pow: float = 2) -> list[torch.Tensor]:
    """New tensors ``v^(1/pow)``, divided by ``(1 - beta^step)^(1/pow)`` when ``debiased``."""
    out = torch._foreach_sqrt(list(v)) if pow == 2 else torch._foreach_pow(list(v), 1 / pow)
    if debiased:
        corr = map_scalar(lambda b: (1 - b ** step) ** (1 / pow), beta)
        torch._foreach_div_(out, corr)
    return out


def sqrt_ema_sq_(tensors: Sequence[torch.Tensor], exp_avg_sq_: Sequence[torch.Tensor], beta: float | Sequence[float],
                 max_exp_avg_sq_: Sequence[torch.Tensor] | None, debiased: bool, step: int, pow: float = 2,
                 ema_sq_fn: Callable = ema_sq_) -> list[torch.Tensor]:
    """Updates the EMA of ``|tensors|^pow`` with ``ema_sq_fn`` (AMSGrad when ``max_exp_avg_sq_`` is
    given) and returns new tensors ``v^(1/pow)``, divided by Adam's correction
    ``(1 - beta^step)^(1/pow)`` when ``debiased`` (``step`` counts from 1).

    Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization", arXiv:1412.6980.
    """
    if isinstance(beta, (list, tuple)):
        beta = list(beta)
    v = ema_sq_fn(tensors, exp_avg_sq_, beta, max_exp_avg_sq_, pow=pow)
    return root_debiased(v, beta, debiased, step, pow)


EMA_SQ_FN = register_callable(ema_sq_, "torchzero.modules.EMA_SQ_FN")
SQRT_EMA_SQ_FN = register_callable(sqrt_ema_sq_, "torchzero.modules.SQRT_EMA_SQ_FN")
