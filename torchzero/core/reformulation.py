"""Reformulations: modules that replace the objective with a modified one.

A reformulation defines :meth:`Reformulation.closure`, which evaluates the modified loss (and its
gradient) using the original closure. Its child modules then optimize the modified objective as
if it were the original one; without children the update is the gradient of the modified loss.
"""
from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from .module import Module

if TYPE_CHECKING:
    from .chain import Chainable
    from .objective import Objective


class Reformulation(Module):
    """Base class of reformulations.

    Args:
        defaults: default settings.
        modules: modules that optimize the modified objective (None: use its gradient as the update).
    """

    def __init__(self, defaults: dict[str, Any] | None, modules: "Chainable | None"):
        super().__init__(defaults)
        if modules is not None:
            self.set_child("modules", modules)

    @abstractmethod
    def closure(self, backward: bool, closure: Callable, params: list[torch.Tensor],
                objective: "Objective") -> tuple[Any, Sequence[torch.Tensor] | None]:
        """Evaluates the modified objective at the current ``params``.

        Returns ``(loss, grads)``; ``grads`` must be given when ``backward`` is True.
        """

    def pre_step(self, objective: "Objective") -> None:
        """Runs once per step before any evaluation (e.g. to draw new perturbations)."""

    def update(self, objective: "Objective") -> None:
        self.pre_step(objective)

    def apply(self, objective: "Objective") -> "Objective":
        original = objective.closure
        if original is None:
            raise RuntimeError(f"{type(self).__name__} needs a closure; pass one to optimizer.step(closure)")
        params = objective.params

        def modified(backward: bool = True) -> Any:
            loss, grads = self.closure(backward, original, params, objective)
            if backward:
                if grads is None:
                    raise RuntimeError(f"{type(self).__name__}.closure returned no gradients for backward=True")
                for p, g in zip(params, grads):
                    p.grad = g
            return loss

        inner = objective.clone(clone_updates=False)
        inner.closure = modified
        inner.loss = inner.loss_approx = None
        inner.grads = None
        inner.updates = None
        if "modules" in self.children:
            from .functional import step
            inner = step(inner, self.children["modules"])
            updates = inner.get_updates()
        else:
            updates = [g.clone() for g in inner.get_grads()]
        objective.set_updates(updates, owned=True)
        objective.loss_approx = inner.loss
        objective.skip_update = inner.skip_update
        if inner.should_terminate is not None:
            objective.should_terminate = inner.should_terminate
        return objective
