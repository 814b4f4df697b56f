"""Reductions over the outputs of several modules (sum, product, elementwise extremes).

Operands are modules, each stepped on its own copy of the objective carrying the incoming
update, or numbers; at least one must be a module.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.module import Module
from ...core.objective import Objective
from ._operands import check_number, is_chainable, run_operand, writable


class ReduceOperationBase(Module, ABC):
    """Base class of reductions over any number of operands.

    Args:
        defaults: settings of the operation.
        *operands: modules (children, replaced by their outputs) or plain values, in the order
            they are evaluated.

    Subclasses implement :meth:`transform`.
    """

    def __init__(self, defaults: dict[str, Any] | None, *operands: Chainable | Any):
        super().__init__(defaults)
        self._operands: list[tuple[str, Any]] = []
        for i, value in enumerate(operands):
            if is_chainable(value):
                key = f"operand_{i}"
                self.set_child(key, value)
                self._operands.append(("module", key))
            else:
                check_number(value, f"inputs[{i}]")
                self._operands.append(("value", value))
        if not self.children:
            raise ValueError(f"{type(self).__name__}: at least one operand must be a module")

    @abstractmethod
    def transform(self, objective: Objective, *operands: Any | list[torch.Tensor]) -> list[torch.Tensor]:
        """Reduces the evaluated ``operands`` to the new update (new or owned tensors)."""

    def apply(self, objective: Objective) -> Objective:
        values = [run_operand(self, v, objective) if kind == "module" else v for kind, v in self._operands]
        out = self.transform(objective, *values)
        objective.set_updates(list(out), owned=True)
        return objective


def _check_inputs(inputs: tuple[Any, ...]) -> None:
    for i, v in enumerate(inputs):
        if not is_chainable(v):
            check_number(v, f"inputs[{i}]")


def _split(operands: tuple[Any, ...]) -> tuple[list[list[torch.Tensor]], list[Any]]:
    tensors = [o for o in operands if isinstance(o, list)]
    numbers = [o for o in operands if not isinstance(o, list)]
    return tensors, numbers


class Sum(ReduceOperationBase):
    """Elementwise sum of the outputs of modules and of numbers (``Mean`` divides by their count)."""

    USE_MEAN = False

    def __init__(self, *inputs: Chainable | float):
        super().__init__({}, *inputs)

    def transform(self, objective, *operands):
        tensors, numbers = _split(operands)
        out = writable(tensors[0])
        for t in tensors[1:]:
            torch._foreach_add_(out, t)
        if numbers:
            torch._foreach_add_(out, sum(numbers))
        if self.USE_MEAN:
            torch._foreach_div_(out, len(operands))
        return out


class Mean(Sum):
    """Elementwise mean of the outputs of modules and of numbers."""

    USE_MEAN = True


class WeightedSum(ReduceOperationBase):
    """``sum_i w_i x_i`` over the outputs of modules and numbers ``x_i`` (``WeightedMean`` divides
    by ``sum_i w_i``).

    Args:
        *inputs: modules or numbers.
        weights: one weight per input.
    """

    USE_MEAN = False

    def __init__(self, *inputs: Chainable | float, weights: Iterable[float]):
        _check_inputs(inputs)
        w = [float(x) for x in weights]
        if len(w) != len(inputs):
            raise ValueError(f"weights must have one entry per input: got {len(w)} weights for {len(inputs)} inputs")
        super().__init__({}, *inputs)
        self._weights = w
        if not isinstance(weights, (list, tuple)):  # a generator: record the values for specs
            args, kwargs = self.__dict__["_init_args"]
            self.__dict__["_init_args"] = (args, dict(kwargs, weights=w))

    def transform(self, objective, *operands):
        out: list[torch.Tensor] | None = None
        const = 0.0
        for x, w in zip(operands, self._weights):
            if not isinstance(x, list):
                const += w * x
            elif out is None:
                out = writable(x)
                torch._foreach_mul_(out, w)
            else:
                torch._foreach_add_(out, x, alpha=w)
        assert out is not None
        if const != 0:
            torch._foreach_add_(out, const)
        if self.USE_MEAN:
            torch._foreach_div_(out, sum(self._weights))
        return out


class WeightedMean(WeightedSum):
    """``sum_i w_i x_i / sum_i w_i`` over the outputs of modules and numbers ``x_i``."""

    USE_MEAN = True


class Prod(ReduceOperationBase):
    """Elementwise product of the outputs of modules and of numbers."""

    def __init__(self, *inputs: Chainable | float):
        super().__init__({}, *inputs)

    def transform(self, objective, *operands):
        tensors, numbers = _split(operands)
        out = writable(tensors[0])
        for t in tensors[1:]:
            torch._foreach_mul_(out, t)
        if numbers:
            c = 1.0
            for n in numbers:
                c *= n
            torch._foreach_mul_(out, c)
        return out


class MaximumModules(ReduceOperationBase):
    """Elementwise maximum of the outputs of modules and of numbers."""

    def __init__(self, *inputs: Chainable | float):
        super().__init__({}, *inputs)

    def transform(self, objective, *operands):
        tensors, numbers = _split(operands)
        out = writable(tensors[0])
        for t in tensors[1:]:
            torch._foreach_maximum_(out, t)
        if numbers:
            torch._foreach_clamp_min_(out, max(numbers))
        return out


class MinimumModules(ReduceOperationBase):
    """Elementwise minimum of the outputs of modules and of numbers."""

    def __init__(self, *inputs: Chainable | float):
        super().__init__({}, *inputs)

    def transform(self, objective, *operands):
        tensors, numbers = _split(operands)
        out = writable(tensors[0])
        for t in tensors[1:]:
            torch._foreach_minimum_(out, t)
        if numbers:
            torch._foreach_clamp_max_(out, min(numbers))
        return out
