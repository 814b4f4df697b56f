"""Norms used by the grafting operations, per tensor or over all tensors as one vector."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

_NAMED_P = {"l0": 0.0, "l1": 1.0, "l2": 2.0, "l3": 3.0, "l4": 4.0, "linf": math.inf}
_STATS = ("mad", "std", "var", "sum")
ORDS = tuple(_STATS) + tuple(_NAMED_P)


def check_ord(ord: Any) -> None:
    """Raises ValueError / TypeError for an ``ord`` that :func:`norms` does not understand."""
    if isinstance(ord, str):
        if ord not in ORDS:
            raise ValueError(f"ord must be a number or one of {ORDS}, got {ord!r}")
        return
    if isinstance(ord, torch.Tensor):
        if ord.numel() != 1:
            raise ValueError("ord given as a tensor must have one element")
        return
    if isinstance(ord, bool) or not isinstance(ord, (int, float)):
        raise TypeError(f"ord must be a number or a string, got {type(ord).__name__}")


def norms(tensors: Sequence[torch.Tensor], ord: Any, tensorwise: bool) -> list[torch.Tensor]:
    """One 0-d tensor per element of ``tensors``: its norm, or (``tensorwise=False``) the norm of
    all tensors concatenated, repeated.

    ``ord`` is a number ``p`` (``(sum |x|^p)^(1/p)``, ``0`` counts non-zeros, ``inf`` is the
    largest magnitude), ``"l0"`` ... ``"l4"`` / ``"linf"`` for those, ``"mad"`` (mean of
    ``|x|``), ``"std"`` / ``"var"`` (unbiased, over the elements) or ``"sum"`` (signed sum).
    """
    tensors = list(tensors)
    if isinstance(ord, torch.Tensor):
        ord = float(ord)
    if isinstance(ord, str) and ord in _NAMED_P:
        ord = _NAMED_P[ord]

    if ord == "mad":
        l1 = torch._foreach_norm(tensors, 1)
        if tensorwise:
            return [n / max(t.numel(), 1) for n, t in zip(l1, tensors)]
        total = sum(t.numel() for t in tensors)
        return [_sum(l1) / max(total, 1)] * len(tensors)
    if ord == "sum":
        sums = [t.sum() for t in tensors]
        return sums if tensorwise else [_sum(sums)] * len(tensors)
    if ord in ("std", "var"):
        fn = torch.std if ord == "std" else torch.var
        if tensorwise:
            return [fn(t) for t in tensors]
        return [fn(torch.cat([t.reshape(-1) for t in tensors]))] * len(tensors)

    p = float(ord)
    per = list(torch._foreach_norm(tensors, p))
    if tensorwise:
        return per
    if p == 0:
        total = _sum(per)
    elif math.isinf(p):
        total = torch.stack([n.to(per[0].dtype) for n in per]).max()
    else:
        total = torch.linalg.vector_norm(torch.stack([n.to(per[0].dtype) for n in per]), p)
    return [total] * len(tensors)


def _sum(values: Sequence[torch.Tensor]) -> torch.Tensor:
    out = values[0]
    for v in values[1:]:
        out = out + v
    return out


def graft_scales(direction_norms: list[torch.Tensor], magnitude_norms: list[torch.Tensor], eps: Any) -> list[torch.Tensor]:
    """``|magnitude| / max(|direction|, eps)`` for each tensor (``eps`` a float or per-tensor list)."""
    if not isinstance(eps, list):
        eps = [eps] * len(direction_norms)
    if direction_norms and all(d is direction_norms[0] for d in direction_norms) and all(m is magnitude_norms[0] for m in magnitude_norms) and all(e == eps[0] for e in eps):
        s = magnitude_norms[0] / direction_norms[0].clamp(min=eps[0])
        return [s] * len(direction_norms)
    return [m / d.clamp(min=e) for d, m, e in zip(direction_norms, magnitude_norms, eps)]
