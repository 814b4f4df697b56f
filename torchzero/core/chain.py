"""Chains of modules."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..utils.params import flatten_modules
from .module import Module

if TYPE_CHECKING:
    from .objective import Objective

Chainable = Module | Sequence[Module]


class Chain(Module):
    """Runs its modules one after another; each sees the objective the previous one returned."""

    def __init__(self, *modules: Module | Iterable[Module]):
        super().__init__()
        for i, m in enumerate(flatten_modules(modules)):
            if not isinstance(m, Module):
                raise TypeError(f"Chain got {type(m).__name__}, expected a Module")
            self.set_child(f"module_{i}", m)

    def _seq(self) -> list[Module]:
        return [self.children[f"module_{i}"] for i in range(len(self.children))]

    def update(self, objective: "Objective") -> None:
        for m in self._seq():
            m.update(objective)
            if objective.stop:
                break

    def apply(self, objective: "Objective") -> "Objective":
        for m in self._seq():
            objective = m.apply(objective)
            if objective.stop:
                break
        return objective

    def step(self, objective: "Objective") -> "Objective":
        for m in self._seq():
            objective = m.step(objective)
            if objective.stop:
                break
        return objective

    def get_H(self, objective: "Objective | None" = None):
        for m in reversed(self._seq()):
            H = m.get_H(objective)
            if H is not None:
                return H
        return None

    def __repr__(self) -> str:
        return f"Chain({', '.join(repr(m) for m in self._seq())})"


def maybe_chain(*modules: Chainable) -> Module:
    """The module itself if exactly one is given, otherwise a :class:`Chain` of them."""
    flat = flatten_modules(modules)
    if len(flat) == 1:
        return flat[0]
    return Chain(*flat)
