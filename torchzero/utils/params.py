"""Normalising the many shapes in which users hand parameters to an optimizer."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

Params = Iterable[torch.Tensor] | Iterable[tuple[str, torch.Tensor]] | Iterable[dict[str, Any]]


def make_param_groups(params: Any) -> list[dict[str, Any]]:
    """Turns ``params`` into a list of parameter-group dicts, each with a ``"params"`` list.

    Accepts an ``nn.Module``, an iterable of tensors, an iterable of ``(name, tensor)`` pairs
    (as ``model.named_parameters()`` yields) or an iterable of group dicts whose ``"params"``
    may themselves be tensors or named pairs. Names, when given, are kept under ``"param_names"``
    as ``torch.optim`` does.
    """
    if isinstance(params, torch.nn.Module):
        params = params.parameters()
    if isinstance(params, torch.Tensor):
        raise TypeError("params must be an iterable of tensors, not a single tensor; wrap it in a list")
    items = list(params)
    if not items:
        raise ValueError("optimizer got an empty parameter list")
    if all(isinstance(i, dict) for i in items):
        groups = []
        for g in items:
            g = dict(g)
            if "params" not in g:
                raise ValueError("a parameter group dict must have a 'params' key")
            tensors, names = _split_named(g["params"])
            g["params"] = tensors
            if names is not None:
                g["param_names"] = names
            groups.append(g)
        return groups
    if any(isinstance(i, dict) for i in items):
        raise TypeError("params mixes parameter-group dicts with tensors")
    tensors, names = _split_named(items)
    group: dict[str, Any] = {"params": tensors}
    if names is not None:
        group["param_names"] = names
    return [group]


def _split_named(items: Any) -> tuple[list[torch.Tensor], list[str] | None]:
    if isinstance(items, torch.Tensor):
        return [items], None
    items = list(items)
    if items and all(isinstance(i, tuple) and len(i) == 2 and isinstance(i[0], str) for i in items):
        return [t for _, t in items], [n for n, _ in items]
    for i in items:
        if not isinstance(i, torch.Tensor):
            raise TypeError(f"optimizer can only optimize tensors, got {type(i).__name__}")
    return items, None


def flatten_modules(modules: Iterable[Any]) -> list[Any]:
    """Flattens nested lists / tuples of modules into a flat list."""
    out: list[Any] = []
    for m in modules:
        if isinstance(m, (list, tuple)):
            out.extend(flatten_modules(m))
        else:
            out.append(m)
    return out


def vec_to_tensors(vec: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Splits a flat vector into tensors shaped like ``like`` (views into ``vec``)."""
    sizes = [t.numel() for t in like]
    return [chunk.view_as(t) for chunk, t in zip(vec.split(sizes), like)]


def tensors_to_vec(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenates tensors into one flat vector (a copy)."""
    return torch.cat([t.reshape(-1) for t in tensors])
