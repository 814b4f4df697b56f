"""Norms and statistics of tensors, whole or along dimensions (clipping, grafting, normalization).

``ord`` is one of

* a number ``p``: ``(sum |x|^p)^(1/p)``; ``0`` counts the non-zeros, ``inf`` / ``-inf`` are the
  largest / smallest magnitude (``"l0"``, ``"l1"`` ... ``"l4"``, ``"linf"`` name those);
* ``"mad"``: the mean of ``|x|``;
* ``"std"`` / ``"var"``: the (unbiased) standard deviation / variance of the elements;
* ``"sum"``: the signed sum.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

NAMED_P = {"l0": 0.0, "l1": 1.0, "l2": 2.0, "l3": 3.0, "l4": 4.0, "linf": math.inf}
STATS = ("mad", "std", "var", "sum")
Ord = Any


def canonical_ord(ord: Ord) -> str | float:
    """``ord`` as a float (p-norms) or one of :data:`STATS`; raises for anything else."""
    if isinstance(ord, torch.Tensor):
        if ord.numel() != 1:
            raise ValueError("ord given as a tensor must have one element")
        return float(ord)
    if isinstance(ord, str):
        if ord in NAMED_P:
            return NAMED_P[ord]
        if ord in STATS:
            return ord
        raise ValueError(f"ord must be a number or one of {tuple(STATS) + tuple(NAMED_P)}, got {ord!r}")
    if isinstance(ord, bool) or not isinstance(ord, (int, float)):
        raise TypeError(f"ord must be a number or a string, got {type(ord).__name__}")
    return float(ord)


def norm(x: torch.Tensor, ord: str | float, dims: Sequence[int] | None = None, keepdim: bool = False) -> torch.Tensor:
    """The norm / statistic of ``x`` over ``dims`` (all elements when None)."""
    d = None if dims is None else tuple(dims)
    if ord == "mad":
        return x.abs().mean(dim=d, keepdim=keepdim) if d is not None else x.abs().mean()
    if ord == "sum":
        return x.sum(dim=d, keepdim=keepdim) if d is not None else x.sum()
    if ord == "std":
        return x.std(dim=d, keepdim=keepdim) if d is not None else x.std()
    if ord == "var":
        return x.var(dim=d, keepdim=keepdim) if d is not None else x.var()
    return torch.linalg.vector_norm(x, ord, dim=d, keepdim=keepdim)


def tensor_norms(tensors: Sequence[torch.Tensor], ord: str | float) -> list[torch.Tensor]:
    """The norm of each tensor (0-d tensors), with one foreach kernel for p-norms."""
    tensors = list(tensors)
    if not tensors:
        return []
    if isinstance(ord, float):
        return list(torch._foreach_norm(tensors, ord))
    if ord == "mad":
        return [n / t.numel() for n, t in zip(torch._foreach_norm(tensors, 1), tensors)]
    return [norm(t, ord) for t in tensors]


def global_norm(tensors: Sequence[torch.Tensor], ord: str | float) -> torch.Tensor:
    """The norm of all tensors concatenated into one vector (a 0-d tensor)."""
    tensors = list(tensors)
    if isinstance(ord, float):
        per = torch.stack(list(torch._foreach_norm(tensors, ord)))
        if ord == 0:
            return per.sum()
        # (sum_i n_i^p)^(1/p) is the p-norm of all elements; max / min for +-inf
        return torch.linalg.vector_norm(per, ord)
    n = sum(t.numel() for t in tensors)
    if ord == "mad":
        return torch.stack(list(torch._foreach_norm(tensors, 1))).sum() / max(n, 1)
    if ord == "sum":
        return torch.stack([t.sum() for t in tensors]).sum()
    return norm(torch.cat([t.reshape(-1) for t in tensors]), ord)


def resolve_dims(ndim: int, dim: int | Sequence[int] | None, inverse_dims: bool) -> tuple[int, ...]:
    """The dimensions of a tensor with ``ndim`` dimensions to reduce over.

    ``None`` means all of them; an int or a sequence selects those the tensor has (negative ones
    count from the end); ``inverse_dims`` takes all the others instead.
    """
    if dim is None:
        sel = tuple(range(ndim))
    else:
        wanted = [dim] if isinstance(dim, int) else list(dim)
        sel_set = set()
        for d in wanted:
            d = int(d)
            if -ndim <= d < ndim:
                sel_set.add(d % ndim)
        sel = tuple(sorted(sel_set))
    if inverse_dims:
        sel = tuple(d for d in range(ndim) if d not in sel)
    return sel


def check_dim(dim: Any) -> None:
    if dim is None or dim == "global":
        return
    if isinstance(dim, str):
        raise ValueError(f"dim must be an int, a sequence of ints, 'global' or None, got {dim!r}")
    if isinstance(dim, bool):
        raise TypeError("dim must be an int, a sequence of ints, 'global' or None, got a bool")
    if isinstance(dim, int):
        return
    try:
        ok = all(isinstance(d, int) and not isinstance(d, bool) for d in dim)
    except TypeError:
        ok = False
    if not ok:
        raise TypeError(f"dim must be an int, a sequence of ints, 'global' or None, got {dim!r}")
