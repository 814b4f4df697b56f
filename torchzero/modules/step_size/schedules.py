"""Step-size schedules that live inside the chain: warmup, norm-clipping warmup, random step sizes."""
from __future__ import annotations

import torch

from ...core.transform import TensorTransform


class Warmup(TensorTransform):
    """Linear learning-rate warmup: multiplies the update by a factor going from ``start_lr`` to ``end_lr``.

    On step ``k`` (counting from 0) the factor is ``start_lr + (end_lr - start_lr) * min(k, steps) / steps``,
    so it reaches ``end_lr`` on step ``steps`` and stays there.

    Goyal et al., 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", arXiv:1706.02677
    (gradual warmup).

    Args:
        steps: number of warmup steps.
        start_lr: factor on the first step.
        end_lr: factor at the end of warmup and afterwards.
    """

    def __init__(self, steps=100, start_lr=1e-5, end_lr: float = 1):
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        super().__init__(dict(steps=steps, start_lr=start_lr, end_lr=end_lr))

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        k = self.increment_counter("step", 0)
        s = settings[0]
        steps = s["steps"]
        factor = s["start_lr"] + (s["end_lr"] - s["start_lr"]) * min(k, steps) / steps
        torch._foreach_mul_(tensors, factor)
        return tensors


class WarmupNormClip(TensorTransform):
    """Warmup by norm clipping: the update norm is capped by a bound that grows linearly, then released.

    On step ``k`` (counting from 0) with ``k <= steps`` the norm of the update (all parameters
    together) is clipped to ``start_norm + (end_norm - start_norm) * k / steps``; after ``steps``
    steps the update passes unchanged.

    Args:
        steps: number of warmup steps.
        start_norm: largest allowed norm on the first step.
        end_norm: largest allowed norm on the last warmup step.
    """

    def __init__(self, steps=100, start_norm=1e-5, end_norm: float = 1):
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        super().__init__(dict(steps=steps, start_norm=start_norm, end_norm=end_norm))

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        k = self.increment_counter("step", 0)
        s = settings[0]
        steps = s["steps"]
        if k > steps:
            return tensors
        max_norm = s["start_norm"] + (s["end_norm"] - s["start_norm"]) * k / steps
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))
        if norm > max_norm:
            torch._foreach_mul_(tensors, max_norm / norm)
        return tensors


class RandomStepSize(TensorTransform):
    """Multiplies the update by a random step size drawn uniformly from ``[low, high)`` on every step.

    One step size for all parameters, or one per parameter tensor with ``parameterwise=True``.

    Args:
        low: smallest step size.
        high: largest step size.
        parameterwise: draw a step size for each parameter tensor.
        seed: seed of this module's own generator (None: the global torch generator).
    """

    def __init__(self, low: float = 0, high: float = 1, parameterwise=False, seed: int | None = None):
        if high < low:
            raise ValueError(f"high ({high}) must be >= low ({low})")
        super().__init__(dict(low=low, high=high, parameterwise=parameterwise, seed=seed))

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        s = settings[0]
        gen = self.get_generator("cpu", s["seed"])
        n = len(tensors) if s["parameterwise"] else 1
        u = torch.rand(n, generator=gen, dtype=torch.float64).tolist()
        steps = [se["low"] + (se["high"] - se["low"]) * u[i if n > 1 else 0] for i, se in enumerate(settings)]
        if n == 1:
            torch._foreach_mul_(tensors, steps[0])
        else:
            torch._foreach_mul_(tensors, steps)
        return tensors
