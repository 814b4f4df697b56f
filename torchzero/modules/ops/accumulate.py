"""Running sums, means, products and extremes of all past updates.

Each keeps an accumulator ``a`` per parameter, updated with every incoming update ``u_t``, and
outputs ``(1 - decay) * a`` (``decay`` scales the output; the accumulator itself keeps
everything).
"""
from __future__ import annotations

import torch

from ...core.transform import TensorTransform
from ...utils.foreach import scalar_or_list


class _Accumulate(TensorTransform):
    inplace = False
    _key = "accumulator"

    def __init__(self, decay: float = 0):
        super().__init__(dict(decay=decay))

    def _init(self, p: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(p)

    def _accumulate(self, acc: list[torch.Tensor], tensors: list[torch.Tensor]) -> None:
        raise NotImplementedError

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings):
        acc = self.get_state(params, self._key, init=self._init)
        self._accumulate(acc, tensors)
        self.global_state["step"] = self.global_state.get("step", 0) + 1

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        acc = self.get_state(params, self._key, init=self._init)
        factor = scalar_or_list([1 - d for d in self.settings.values(params, "decay")[0]])
        return torch._foreach_mul(acc, factor)


class AccumulateSum(_Accumulate):
    """Sum of all past updates: ``a_t = a_{t-1} + u_t``, output ``(1 - decay) * a_t``.

    Args:
        decay: the output is ``(1 - decay)`` times the accumulator.
    """

    _key = "sum"

    def __init__(self, decay: float = 0):
        super().__init__(decay)

    def _accumulate(self, acc, tensors):
        torch._foreach_add_(acc, tensors)


class AccumulateMean(_Accumulate):
    """Mean of all past updates: ``a_t = a_{t-1} + u_t``, output ``(1 - decay) * a_t / t``.

    Args:
        decay: the output is ``(1 - decay)`` times the mean.
    """

    _key = "sum"

    def __init__(self, decay: float = 0):
        super().__init__(decay)

    def _accumulate(self, acc, tensors):
        torch._foreach_add_(acc, tensors)

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        out = super().multi_tensor_apply(tensors, params, grads, loss, states, settings)
        torch._foreach_div_(out, max(self.global_state.get("step", 1), 1))
        return out


class AccumulateMaximum(_Accumulate):
    """Elementwise maximum of all past updates, ``a_t = max(a_{t-1}, u_t)``, starting from
    ``a_0 = 0`` (so the output is never negative); output ``(1 - decay) * a_t``.

    Args:
        decay: the output is ``(1 - decay)`` times the accumulator.
    """

    _key = "maximum"

    def __init__(self, decay: float = 0):
        super().__init__(decay)

    def _accumulate(self, acc, tensors):
        torch._foreach_maximum_(acc, tensors)


class AccumulateMinimum(_Accumulate):
    """Elementwise minimum of all past updates, ``a_t = min(a_{t-1}, u_t)``, starting from
    ``a_0 = 0`` (so the output is never positive); output ``(1 - decay) * a_t``.

    Args:
        decay: the output is ``(1 - decay)`` times the accumulator.
    """

    _key = "minimum"

    def __init__(self, decay: float = 0):
        super().__init__(decay)

    def _accumulate(self, acc, tensors):
        torch._foreach_minimum_(acc, tensors)


class AccumulateProduct(_Accumulate):
    """Elementwise product of all past updates, ``a_t = a_{t-1} * u_t`` with ``a_0 = 1``;
    output ``(1 - decay) * a_t``.

    Args:
        decay: the output is ``(1 - decay)`` times the accumulator.
        target: what is accumulated; only ``"update"`` is supported.
    """

    _key = "product"

    def __init__(self, decay: float = 0, target="update"):
        if target != "update":
            raise ValueError(f"target must be 'update', got {target!r}")
        super().__init__(decay)

    def _init(self, p):
        return torch.ones_like(p)

    def _accumulate(self, acc, tensors):
        torch._foreach_mul_(acc, tensors)
