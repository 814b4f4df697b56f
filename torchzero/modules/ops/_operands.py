"""Running operand modules of the ops (binary, multi-operand and reduce operations).

An operand that is a module is stepped on a shallow copy of the objective that carries the
incoming update, so it cannot change the update the operation itself works on. What it returns
is handed back as a list of tensors; :class:`OwnedTensors` marks a list the child produced
itself, which the operation may then overwrite instead of allocating a new one.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from ...core.functional import step
from ...core.module import Module

if TYPE_CHECKING:
    from ...core.objective import Objective


class OwnedTensors(list):
    """A list of tensors nobody else references: safe to modify in place."""


def is_chainable(value: Any) -> bool:
    """True for a module or a non-empty sequence of modules."""
    if isinstance(value, Module):
        return True
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(v, Module) for v in value)


def check_number(value: Any, name: str, allow_none: bool = False) -> None:
    """Raises TypeError unless ``value`` is a real number (or None when allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a number, None or a module" if allow_none else "a number or a module"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__}")


def run_operand(module: Module, key: str, objective: "Objective") -> list[torch.Tensor]:
    """Steps ``module.children[key]`` on a copy of ``objective`` and returns its update.

    Loss and gradients the child evaluates are handed back to ``objective``. The result is an
    :class:`OwnedTensors` when the child produced new tensors, a plain list when it may alias
    the incoming update, the gradients or the parameters.
    """
    sub = objective.clone(clone_updates=False)
    sub = step(sub, module.children[key])
    objective.update_attrs_from_clone_(sub)
    if sub.updates is None:
        return list(sub.peek_updates())
    if sub._updates_owned:
        return OwnedTensors(sub.updates)
    return list(sub.updates)


def writable(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``tensors`` itself when it is owned, else a copy that may be modified in place."""
    if isinstance(tensors, OwnedTensors):
        return tensors
    return [t.clone() for t in tensors]


def full_like_list(value: float, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [torch.full_like(t, value) for t in like]
