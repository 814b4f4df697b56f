"""Averages over a window of past updates: Averaging, MedianAveraging, WeightedAveraging.

Each keeps the last ``n`` updates of a parameter in a ring buffer of shape ``(n, *param.shape)``;
slot ``t mod n`` receives the update of step ``t``. Until ``n`` updates were seen, only the
``k < n`` that exist are used.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.transform import TensorTransform

_HIST = "history"


class _Window(TensorTransform):
    inplace = False
    _size_key = "history_size"

    def _size(self, setting: Mapping[str, Any]) -> int:
        return int(setting[self._size_key])

    def _push(self, tensors: list[torch.Tensor], params: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor], list[int]]:
        """The windows (created on first use), the slot of each that this step's update goes to
        (still holding the update from ``n`` steps ago), and the window sizes."""
        step = self.global_state.get("step", 0)
        hists, slots, sizes = [], [], []
        for p, t in zip(params, tensors):
            n = self._size(self.settings[p])
            st = self.state[p]
            h = st.get(_HIST)
            if h is None:
                h = st[_HIST] = torch.zeros((n, *t.shape), dtype=t.dtype, device=t.device)
            hists.append(h)
            slots.append(h[step % n])
            sizes.append(n)
        return hists, slots, sizes

    def _count(self, n: int) -> int:
        """How many updates the window of size ``n`` holds after this step."""
        return min(self.global_state.get("step", 1), n)


class Averaging(_Window):
    """Mean of the last ``history_size`` updates: ``output_t = (1/k) sum_{i=0}^{k-1} u_{t-i}``
    with ``k = min(t, history_size)``.

    The mean is summed from the window every step (not kept as a running sum, whose rounding
    errors would not cancel when large and small updates alternate).

    Args:
        history_size: number of past updates to average.
    """

    def __init__(self, history_size: int):
        if int(history_size) < 1:
            raise ValueError(f"history_size must be >= 1, got {history_size}")
        super().__init__(dict(history_size=int(history_size)))

    def multi_tensor_update(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                            states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        _, slots, _ = self._push(tensors, params)
        torch._foreach_copy_(slots, tensors)
        self.global_state["step"] = self.global_state.get("step", 0) + 1

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: Any, settings: Any) -> list[torch.Tensor]:
        hists = [self.state[p][_HIST] for p in params]
        return _weighted_window(hists, [(1.0,) * h.shape[0] for h in hists], self.global_state["step"])


class MedianAveraging(_Window):
    """Element-wise median of the last ``history_size`` updates (of the ``k = min(t, history_size)``
    that exist; for even ``k`` the mean of the two middle values).

    The median is robust to a few outlying updates (e.g. noisy minibatch gradients), unlike the mean.

    Args:
        history_size: number of past updates to take the median of.
    """

    def __init__(self, history_size: int):
        if int(history_size) < 1:
            raise ValueError(f"history_size must be >= 1, got {history_size}")
        super().__init__(dict(history_size=int(history_size)))

    def multi_tensor_update(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                            states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        _, slots, _ = self._push(tensors, params)
        torch._foreach_copy_(slots, tensors)
        self.global_state["step"] = self.global_state.get("step", 0) + 1

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> list[torch.Tensor]:
        out = []
        for p in params:
            h = self.state[p][_HIST]
            k = self._count(h.shape[0])
            if k == 1:
                out.append(h[0].clone())
                continue
            srt = torch.sort(h[:k], dim=0).values
            if k % 2:
                out.append(srt[k // 2].clone())
            else:
                out.append((srt[k // 2 - 1] + srt[k // 2]) / 2)
        return out


class WeightedAveraging(_Window):
    """Weighted average of the last ``len(weights)`` updates, weights from the oldest to the newest.

    With ``n = len(weights)`` and ``k = min(t, n)`` updates available, the newest gets
    ``weights[-1]``, the one before ``weights[-2]`` and so on::

        output_t = (1/k) sum_{i=0}^{k-1} weights[n-1-i] * u_{t-i}

    so equal weights of 1 give the plain mean of :class:`Averaging`.

    Args:
        weights: a sequence (or 1-d tensor) of weights, oldest first.
    """

    _size_key = "weights"

    def __init__(self, weights: Sequence[float] | torch.Tensor | Any):
        w = [float(x) for x in (weights.tolist() if isinstance(weights, torch.Tensor) else weights)]
        if not w:
            raise ValueError("weights must not be empty")
        super().__init__(dict(weights=tuple(w)))

    def _size(self, setting: Mapping[str, Any]) -> int:
        return len(setting["weights"])

    def multi_tensor_update(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                            states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        _, slots, _ = self._push(tensors, params)
        torch._foreach_copy_(slots, tensors)
        self.global_state["step"] = self.global_state.get("step", 0) + 1

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> list[torch.Tensor]:
        weights = self.settings.values(params, "weights")[0]
        hists = [self.state[p][_HIST] for p in params]
        return _weighted_window(hists, weights, self.global_state["step"])


def _weighted_window(hists: list[torch.Tensor], weights: list[Sequence[float]], step: int) -> list[torch.Tensor]:
    """``(1/k) sum_{i<k} w[n-1-i] * (i-th newest update)`` for each window (``step`` updates seen,
    the newest in slot ``(step - 1) mod n``, ``k = min(step, n)``)."""
    if all(h.shape[0] == hists[0].shape[0] for h in hists) and all(w == weights[0] for w in weights):
        # one foreach pass per window position, over all parameters at once
        w = weights[0]
        n = len(w)
        k = min(step, n)
        out: list[torch.Tensor] | None = None
        for i in range(k):  # i-th newest
            slot = (step - 1 - i) % n
            coef = w[n - 1 - i] / k
            views = [h[slot] for h in hists]
            if out is None:
                out = list(torch._foreach_mul(views, coef))
            else:
                torch._foreach_add_(out, views, alpha=coef)
        assert out is not None
        return out
    res = []
    for h, w in zip(hists, weights):
        n = len(w)
        k = min(step, n)
        coefs = torch.zeros(n, dtype=h.dtype, device=h.device)
        for i in range(k):
            coefs[(step - 1 - i) % n] = w[n - 1 - i] / k
        res.append(torch.tensordot(coefs, h, dims=1))
    return res
