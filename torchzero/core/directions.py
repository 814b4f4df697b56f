"""Random directions rebuilt from a seed.

``make_direction(distribution, seed, like)`` is a pure function of its arguments, so a point
``base + scale * direction`` can travel as ``(seed, scale)`` and be rebuilt on another worker.
Each direction has its own generator, seeded with ``seed``, on the device of ``like``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

DISTRIBUTIONS = ("rademacher", "gaussian", "normal", "uniform", "sphere")


def make_direction(distribution: str, seed: int, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Random tensors shaped like ``like``.

    * ``rademacher``: entries +-1 with equal probability;
    * ``gaussian`` / ``normal``: standard normal entries;
    * ``uniform``: entries uniform on [-1, 1];
    * ``sphere``: standard normal entries scaled so the whole direction has norm ``sqrt(n)``.
    """
    if not like:
        return []
    device = like[0].device
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    out = []
    for t in like:
        if distribution == "rademacher":
            d = torch.randint(0, 2, t.shape, generator=g, device=device, dtype=torch.int8).to(t.dtype).mul_(2).sub_(1)
        elif distribution in ("gaussian", "normal", "sphere"):
            d = torch.randn(t.shape, generator=g, device=device, dtype=t.dtype)
        elif distribution == "uniform":
            d = torch.rand(t.shape, generator=g, device=device, dtype=t.dtype).mul_(2).sub_(1)
        else:
            raise ValueError(f"unknown distribution {distribution!r}; expected one of {DISTRIBUTIONS}")
        out.append(d)
    if distribution == "sphere":
        n = sum(d.numel() for d in out)
        norm = torch.sqrt(sum((d * d).sum() for d in out))
        factor = math.sqrt(n) / float(norm.clamp_min(torch.finfo(out[0].dtype).tiny))
        out = [d.mul_(factor) for d in out]
    return out
