"""Homotopies: optimize a monotone transformation of the loss."""
from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import torch

from ...core.evaluation import EvalResult, Point, evaluate_points
from ...core.module import Module
from ...core.objective import Objective


class HomotopyBase(Module):
    """Replaces the loss ``f`` by ``phi(f)`` for the modules that follow.

    The gradient follows from the chain rule, ``grad phi(f) = phi'(f) grad f``: one evaluation
    of the original closure gives both. Later modules (line searches, trust regions...) see a
    closure that returns ``phi(f)`` and its gradient. A monotone ``phi`` keeps the minimizers
    and changes the conditioning (e.g. ``sqrt`` of a quadratic is a cone, ``log`` makes steps
    invariant to the scale of ``f``).

    Subclasses implement :meth:`loss_transform` with differentiable torch operations.
    """

    @abstractmethod
    def loss_transform(self, loss: torch.Tensor) -> torch.Tensor:
        """``phi(loss)`` for a scalar tensor."""

    def _transform(self, loss: Any, grads: list[torch.Tensor] | None) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        l0 = loss.detach() if isinstance(loss, torch.Tensor) else torch.tensor(float(loss))
        if grads is None:
            with torch.no_grad():
                return self.loss_transform(l0), None
        with torch.enable_grad():
            l = l0.clone().requires_grad_(True)
            y = self.loss_transform(l)
            (dy,) = torch.autograd.grad(y, l)
        return y.detach(), [g * dy.to(g.dtype) for g in grads]

    def apply(self, objective: Objective) -> Objective:
        closure = objective.closure
        if closure is None:
            raise RuntimeError(f"{type(self).__name__} transforms the loss and needs a closure; "
                               "pass one to optimizer.step(closure)")
        params = objective.params
        loss, grads = objective.get_loss_grads()
        loss, grads = self._transform(loss, list(grads))
        objective.loss = objective.loss_approx = loss
        objective.grads = grads
        objective.set_updates(grads, owned=False)
        objective.closure = _HomotopyClosure(self, closure, params)
        return objective


class _HomotopyClosure:
    def __init__(self, homotopy: HomotopyBase, closure: Callable, params: list[torch.Tensor]):
        self.homotopy = homotopy
        self.closure = closure
        self.params = params
        if hasattr(closure, "evaluate_batch"):
            self.evaluate_batch = self._evaluate_batch

    def __call__(self, backward: bool = True) -> Any:
        if not backward:
            return self.homotopy._transform(self.closure(False), None)[0]
        with torch.enable_grad():
            loss = self.closure(True)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        loss, grads = self.homotopy._transform(loss, grads)
        assert grads is not None
        for p, g in zip(self.params, grads):
            p.grad = g
        return loss

    def _evaluate_batch(self, points: list[Point], backward: bool = False) -> list[EvalResult]:
        out = []
        for r in evaluate_points(self.closure, self.params, points, backward):
            loss, grads = self.homotopy._transform(r.loss, r.grads)
            out.append(EvalResult(loss, grads))
        return out


class LambdaHomotopy(HomotopyBase):
    """Optimizes ``fn(f)`` for a user function ``fn`` of the scalar loss (differentiable in torch).

    Args:
        fn: callable taking and returning a scalar tensor; in a spec it must be registered
            (``torchzero.core.spec.register_callable``).
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        super().__init__()
        self._fn = fn

    def loss_transform(self, loss: torch.Tensor) -> torch.Tensor:
        return self._fn(loss)


class SqrtHomotopy(HomotopyBase):
    """Optimizes ``sqrt(f)``; gradient ``grad f / (2 sqrt(f))`` (for ``f >= 0``)."""

    def loss_transform(self, loss: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(loss)


class SquareHomotopy(HomotopyBase):
    """Optimizes ``f^2``; gradient ``2 f grad f``."""

    def loss_transform(self, loss: torch.Tensor) -> torch.Tensor:
        return loss * loss


class ExpHomotopy(HomotopyBase):
    """Optimizes ``exp(f)``; gradient ``exp(f) grad f``."""

    def loss_transform(self, loss: torch.Tensor) -> torch.Tensor:
        return torch.exp(loss)


class LogHomotopy(HomotopyBase):
    """Optimizes ``log(f)``; gradient ``grad f / f`` (for ``f > 0``): steps become invariant to
    the scale of ``f``."""

    def loss_transform(self, loss: torch.Tensor) -> torch.Tensor:
        return torch.log(loss)
