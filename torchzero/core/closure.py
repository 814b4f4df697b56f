"""Closures: the ``closure(backward=True)`` protocol, and closures written without it.

The library calls every closure as ``closure(backward)``: with ``backward=True`` the closure
zeroes the gradients, computes the loss and calls ``loss.backward()``; with ``backward=False`` it
only computes the loss. :func:`normalize_closure` adapts a plain ``closure()`` (the
``torch.optim`` style, which may or may not call ``backward`` itself) to that protocol, so every
module works with both.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch


_ACCEPTS: dict[Any, bool] = {}


def _accepts_backward(fn: Callable) -> bool:
    # closures are often redefined every step: remember the answer per code object
    code = getattr(fn, "__code__", None)
    if code is not None:
        hit = _ACCEPTS.get(code)
        if hit is None:
            if len(_ACCEPTS) > 4096:
                _ACCEPTS.clear()
            hit = _ACCEPTS[code] = _inspect_accepts_backward(fn)
        return hit
    return _inspect_accepts_backward(fn)


def _inspect_accepts_backward(fn: Callable) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    if "backward" in sig.parameters:
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


class PlainClosure:
    """Adapts ``closure()`` to ``closure(backward=True)``.

    With ``backward=True`` the gradients of ``params`` are cleared, the closure runs with grad
    enabled, and ``loss.backward()`` is called unless the closure already did it.
    """

    def __init__(self, fn: Callable[[], Any], params: Sequence[torch.Tensor]):
        self.fn = fn
        self.params = params

    def __call__(self, backward: bool = True) -> Any:
        # fresh gradient tensors, so that gradients held elsewhere are never accumulated into
        for p in self.params:
            p.grad = None
        # grad stays enabled even without backward: the closure may call backward itself
        with torch.enable_grad():
            loss = self.fn()
        if backward and isinstance(loss, torch.Tensor) and loss.requires_grad and all(p.grad is None for p in self.params):
            loss.backward()
        return loss


def normalize_closure(closure: Callable | None, params: Sequence[torch.Tensor]) -> Callable | None:
    """Returns a closure following the ``closure(backward)`` protocol (or None)."""
    if closure is None or hasattr(closure, "evaluate_batch"):
        return closure
    if _accepts_backward(closure):
        return closure
    return PlainClosure(closure, params)


def loss_to_float(loss: Any) -> float:
    if isinstance(loss, torch.Tensor):
        return float(loss.detach())
    return float(loss)


class CountingClosure:
    """Counts every evaluation into ``counter.num_evaluations`` (batches count one per point)."""

    def __init__(self, closure: Callable, counter: Any):
        self.closure = closure
        self.counter = counter
        if hasattr(closure, "evaluate_batch"):
            self.evaluate_batch = self._evaluate_batch

    def __call__(self, backward: bool = True) -> Any:
        self.counter.num_evaluations += 1
        return self.closure(backward)

    def _evaluate_batch(self, points: Sequence[Any], backward: bool = False) -> Any:
        self.counter.num_evaluations += len(points)
        return self.closure.evaluate_batch(points, backward)
