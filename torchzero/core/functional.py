"""Stepping a module outside an :class:`Optimizer`."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from .objective import Objective

if TYPE_CHECKING:
    from .module import Module


def step(objective: Objective, modules: "Module | Sequence[Module]") -> Objective:
    """Steps ``modules`` one after another on ``objective`` (a child's objective is a copy, so
    an early ``stop`` stays inside it). Post-step hooks are not run."""
    from .module import Module
    if isinstance(modules, Module):
        modules = [modules]
    child = objective.clone(clone_updates=False)
    child._updates_owned = objective._updates_owned
    for m in modules:
        child = m.step(child)
        if child.stop:
            break
    objective.update_attrs_from_clone_(child)
    objective.set_updates(child.updates, owned=child._updates_owned)
    objective.skip_update = child.skip_update
    return objective


def step_tensors(
    modules: "Module | Sequence[Module]",
    tensors: Sequence[torch.Tensor],
    params: Sequence[torch.Tensor] | None = None,
    grads: Sequence[torch.Tensor] | None = None,
    loss: Any = None,
    closure: Callable | None = None,
    objective: Objective | None = None,
) -> list[torch.Tensor]:
    """Runs ``modules`` on ``tensors`` as if they were the update, and returns the new update."""
    if params is None:
        params = tensors
    obj = Objective(params, closure, loss)
    if objective is not None:
        obj.modular = objective.modular
        obj.parent = objective.parent
        obj.storage = objective.storage
        obj.attrs = objective.attrs
        obj.current_step = objective.current_step
    obj.grads = list(grads) if grads is not None else None
    obj.set_updates(list(tensors), owned=True)
    obj = step(obj, modules)
    return obj.get_updates()
