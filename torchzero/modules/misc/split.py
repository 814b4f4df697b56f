"""Different modules for different parameters."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from ...core.module import Module
from ...core.objective import Objective

Filter = Callable[[torch.Tensor], bool] | torch.Tensor | Iterable[torch.Tensor] | torch.nn.Module | Iterable[torch.nn.Module]


def _make_predicate(filter: Any) -> Callable[[torch.Tensor], bool]:
    """Turns a filter (callable, tensor(s), nn.Module(s), or a sequence of those meaning "any") into a predicate."""
    if isinstance(filter, torch.Tensor):
        return lambda p, t=filter: p is t
    if isinstance(filter, torch.nn.Module):
        ids = {id(t) for t in filter.parameters()}
        return lambda p: id(p) in ids
    if callable(filter):
        return filter
    if isinstance(filter, Iterable) and not isinstance(filter, (str, bytes)):
        items = list(filter)
        tensor_ids = {id(t) for t in items if isinstance(t, torch.Tensor)}
        others = [_make_predicate(f) for f in items if not isinstance(f, torch.Tensor)]
        return lambda p: id(p) in tensor_ids or any(f(p) for f in others)
    raise TypeError(f"Split filter must be a callable, a tensor, an nn.Module or a sequence of those, got {type(filter).__name__}")


def sub_objective(objective: Objective, idx: Sequence[int]) -> Objective:
    """A view of ``objective`` restricted to the parameters at ``idx``.

    Loss and gradients it evaluates (through the shared closure) are handed to ``objective``.
    """
    sub = objective.clone(clone_updates=False, parent=objective)
    sub.params = [objective.params[i] for i in idx]
    if objective.grads is not None:
        sub.grads = [objective.grads[i] for i in idx]
    if objective.updates is not None:
        sub.updates = [objective.updates[i] for i in idx]
        sub._updates_owned = objective._updates_owned
    return sub


class Split(Module):
    """Applies ``true`` to the parameters selected by ``filter`` and ``false`` to all others.

    Args:
        filter: selects the parameters for ``true``: a function of a tensor returning a bool (e.g.
            ``lambda p: p.ndim >= 2``), a tensor or an iterable of tensors (e.g.
            ``encoder.parameters()``), an ``nn.Module``, or a sequence of those (selected if any selects).
        true: modules for the selected parameters (None: leave their update unchanged).
        false: modules for the other parameters (None: leave their update unchanged).
    """

    def __init__(self, filter: Filter, true: Module | Sequence[Module] | None, false: Module | Sequence[Module] | None):
        super().__init__()
        self._predicate = _make_predicate(filter)
        if true is not None:
            self.set_child("true", true)
        if false is not None:
            self.set_child("false", false)

    def __getstate__(self) -> dict[str, Any]:
        d = super().__getstate__()
        d.pop("_predicate", None)
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        super().__setstate__(d)
        args, kwargs = self._init_args
        self._predicate = _make_predicate(kwargs["filter"] if "filter" in kwargs else args[0])

    def apply(self, objective: Objective) -> Objective:
        params = objective.params
        mask = [bool(self._predicate(p)) for p in params]
        pieces: dict[int, torch.Tensor] = {}
        owned = True
        skips: list[bool] = []
        for key, flag in (("true", True), ("false", False)):
            idx = [i for i, m in enumerate(mask) if m is flag]
            if not idx:
                continue
            if key not in self.children:
                upd = objective.peek_updates()
                for i in idx:
                    pieces[i] = upd[i]
                owned = owned and objective._updates_owned
                skips.append(False)
                continue
            sub = self.children[key].step(sub_objective(objective, idx))
            skips.append(sub.skip_update)
            if sub.skip_update:
                # the branch moved its parameters itself
                for i, p in zip(idx, sub.params):
                    pieces[i] = torch.zeros_like(p)
                continue
            upd = sub.peek_updates()
            owned = owned and sub._updates_owned
            for i, u in zip(idx, upd):
                pieces[i] = u
        objective.set_updates([pieces[i] for i in range(len(params))], owned=owned)
        if skips and all(skips):
            objective.skip_update = True
        return objective
