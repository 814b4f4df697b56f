"""Norms and spread statistics of lists of tensors, used by grafting and termination modules.

``ord`` is a number ``p`` (the vector p-norm, ``inf`` for the largest magnitude, ``0`` for the
number of non-zero entries) or one of the names ``"l0"`` ... ``"l4"``, ``"linf"``, ``"mad"``
(mean absolute value), ``"std"``, ``"var"`` (unbiased standard deviation / variance of the entries)
and ``"sum"`` (plain sum of the entries).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

METRIC_NAMES = ("mad", "std", "var", "sum", "l0", "l1", "l2", "l3", "l4", "linf")


def _as_p(ord: Any) -> float | None:
    """The p of a p-norm, or None for the named statistics."""
    if isinstance(ord, torch.Tensor):
        ord = float(ord)
    if isinstance(ord, str):
        if ord in ("mad", "std", "var", "sum"):
            return None
        if ord == "linf":
            return math.inf
        if ord.startswith("l"):
            try:
                return float(ord[1:])
            except ValueError:
                pass
        raise ValueError(f"unknown ord {ord!r}; expected a number or one of {METRIC_NAMES}")
    if isinstance(ord, (int, float)):
        return float(ord)
    raise TypeError(f"ord must be a number or a string, got {type(ord).__name__}")


def check_ord(ord: Any) -> None:
    _as_p(ord)


def _pnorm_parts(tensors: Sequence[torch.Tensor], p: float) -> torch.Tensor:
    """Per-tensor partial results that combine into the global p-norm (see :func:`global_metric`)."""
    if p == 2:
        return torch.stack(torch._foreach_norm(tensors))
    if math.isinf(p):
        return torch.stack([t.abs().max() if t.numel() else t.new_zeros(()) for t in tensors])
    if p == 0:
        return torch.stack([(t != 0).sum().to(t.dtype) for t in tensors])
    return torch.stack([t.abs().pow(p).sum() for t in tensors])


def global_metric(tensors: Sequence[torch.Tensor], ord: Any = 2) -> torch.Tensor:
    """The metric of all ``tensors`` seen as one vector (a 0-d tensor)."""
    p = _as_p(ord)
    if p is None:
        vec = torch.cat([t.reshape(-1) for t in tensors])
        return tensor_metric(vec, ord)
    parts = _pnorm_parts(tensors, p)
    if p == 2:
        return torch.linalg.vector_norm(parts)
    if math.isinf(p):
        return parts.max()
    if p == 0 or p == 1:
        return parts.sum()
    return parts.sum().pow(1 / p)


def tensor_metric(t: torch.Tensor, ord: Any = 2) -> torch.Tensor:
    """The metric of one tensor (a 0-d tensor)."""
    p = _as_p(ord)
    if p is None:
        if ord == "mad":
            return t.abs().mean()
        if ord == "std":
            return t.std() if t.numel() > 1 else t.new_zeros(())
        if ord == "var":
            return t.var() if t.numel() > 1 else t.new_zeros(())
        return t.sum()
    if p == 0:
        return (t != 0).sum().to(t.dtype)
    return torch.linalg.vector_norm(t, p)


def metrics(tensors: Sequence[torch.Tensor], ord: Any = 2, tensorwise: bool = False) -> list[torch.Tensor]:
    """One metric per tensor (``tensorwise``) or the global metric repeated for each tensor."""
    if tensorwise:
        return [tensor_metric(t, ord) for t in tensors]
    m = global_metric(tensors, ord)
    return [m] * len(tensors)
