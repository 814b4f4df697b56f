"""Operations on the outputs of several modules.

Every module operand is stepped on its own copy of the objective (all carry the same incoming
update) and the operation combines what they output into the new update. Numbers may stand in
for some operands, but at least one must be a module.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.module import Module
from ...core.objective import Objective
from ...utils.foreach import scalar_or_list
from ._norms import check_ord, graft_scales, norms
from ._operands import check_number, full_like_list, is_chainable, run_operand, writable
from .binary import _graft_settings


class MultiOperationBase(Module, ABC):
    """Base class of operations whose operands are all modules (or numbers).

    Args:
        defaults: settings of the operation.
        **operands: the operands by name, evaluated in this order; modules become children and
            are replaced by their outputs, other values are passed through.

    Subclasses implement :meth:`transform`, which receives the evaluated operands and returns the
    new update. A list it receives may be modified in place only after :func:`writable`.
    """

    def __init__(self, defaults: dict[str, Any] | None, **operands: Chainable | Any):
        super().__init__(defaults)
        self._operand_names: list[str] = list(operands)
        self._constants: dict[str, Any] = {}
        for name, value in operands.items():
            if is_chainable(value):
                self.set_child(name, value)
            else:
                self._constants[name] = value
        if not self.children:
            raise ValueError(f"{type(self).__name__}: at least one operand must be a module")

    @abstractmethod
    def transform(self, objective: Objective, **operands: Any | list[torch.Tensor]) -> list[torch.Tensor]:
        """Combines the evaluated ``operands`` into the new update (new or owned tensors)."""

    def apply(self, objective: Objective) -> Objective:
        values = {name: run_operand(self, name, objective) if name in self.children else self._constants[name]
                  for name in self._operand_names}
        out = self.transform(objective, **values)
        objective.set_updates(list(out), owned=True)
        return objective


def _tensors(x: Any) -> bool:
    return isinstance(x, list)


def _check(value: Any, name: str, allow_none: bool = False) -> None:
    if not is_chainable(value):
        check_number(value, name, allow_none=allow_none)


class ClipModules(MultiOperationBase):
    """``input(update).clip(min, max)``; ``min`` and ``max`` are None, numbers or modules."""

    def __init__(self, input: Chainable, min: float | Chainable | None = None, max: float | Chainable | None = None):
        _check(input, "input")
        _check(min, "min", allow_none=True)
        _check(max, "max", allow_none=True)
        super().__init__({}, input=input, min=min, max=max)

    def transform(self, objective, input, min, max):
        out = writable(input) if _tensors(input) else full_like_list(input, objective.params)
        if min is not None:
            torch._foreach_clamp_min_(out, min)
        if max is not None:
            torch._foreach_clamp_max_(out, max)
        return out


class DivModules(MultiOperationBase):
    """``input / other``; each is a number or a module.

    Args:
        input: numerator.
        other: denominator.
        other_first: evaluate ``other`` before ``input`` (matters when the modules evaluate the
            objective or keep state that depends on the order).
    """

    def __init__(self, input: Chainable | float, other: Chainable | float, other_first: bool = False):
        _check(input, "input")
        _check(other, "other")
        if other_first:
            super().__init__({}, other=other, input=input)
        else:
            super().__init__({}, input=input, other=other)

    def transform(self, objective, input, other):
        if not _tensors(input):
            out = full_like_list(input, other)
        else:
            out = writable(input)
        torch._foreach_div_(out, other)
        return out


class SubModules(MultiOperationBase):
    """``input - alpha * other``; each is a number or a module."""

    def __init__(self, input: Chainable | float, other: Chainable | float, alpha: float = 1):
        _check(input, "input")
        _check(other, "other")
        super().__init__(dict(alpha=alpha), input=input, other=other)

    def transform(self, objective, input, other):
        alpha = scalar_or_list(self.settings.values(objective.params, "alpha")[0])
        out = writable(input) if _tensors(input) else full_like_list(input, other)
        if not _tensors(other):
            shift = [-a * other for a in alpha] if isinstance(alpha, list) else -alpha * other
            torch._foreach_add_(out, shift)
        elif isinstance(alpha, list):
            torch._foreach_sub_(out, torch._foreach_mul(other, alpha))
        else:
            torch._foreach_sub_(out, other, alpha=alpha)
        return out


class PowModules(MultiOperationBase):
    """``input ** exponent``; each is a number or a module."""

    def __init__(self, input: Chainable | float, exponent: Chainable | float):
        _check(input, "input")
        _check(exponent, "exponent")
        super().__init__({}, input=input, exponent=exponent)

    def transform(self, objective, input, exponent):
        if not _tensors(input):
            return torch._foreach_pow(input, exponent)
        out = writable(input)
        torch._foreach_pow_(out, exponent)
        return out


class LerpModules(MultiOperationBase):
    """Linear interpolation ``input(update) + weight * (end(update) - input(update))``.

    Args:
        input: start point module(s).
        end: end point module(s).
        weight: interpolation weight (0 gives ``input``, 1 gives ``end``).
    """

    def __init__(self, input: Chainable, end: Chainable, weight: float):
        _check(input, "input")
        _check(end, "end")
        super().__init__(dict(weight=weight), input=input, end=end)

    def transform(self, objective, input, end):
        weight = scalar_or_list(self.settings.values(objective.params, "weight")[0])
        out = writable(input) if _tensors(input) else full_like_list(input, end)
        if not _tensors(end):
            end = full_like_list(end, out)
        torch._foreach_lerp_(out, end, weight)
        return out


class Graft(MultiOperationBase):
    """The direction of one module with the norm of another ("grafting").

    ``g = direction * ||magnitude|| / max(||direction||, eps)``, and with ``strength < 1`` the
    interpolation ``direction + strength * (g - direction)``. Norms are per tensor
    (``tensorwise=True``) or of all tensors as one vector. Grafting is from Agarwal, Anil, Hazan,
    Koren & Zhang, 2020, "Disentangling Adaptive Gradient Methods from Learning Rates",
    arXiv:2002.11803 (e.g. Shampoo's direction with Adam's step length).

    Args:
        direction: module(s) giving the direction.
        magnitude: module(s) giving the norm.
        tensorwise: per-tensor norms (True) or global.
        ord: a number ``p`` (``0`` counts non-zeros, ``inf`` is the largest magnitude),
            ``"l0"``-``"l4"``, ``"linf"``, ``"mad"`` (mean absolute value), ``"std"`` / ``"var"``
            (unbiased, over the elements) or ``"sum"`` (signed sum of the elements).
        eps: lower bound of the denominator.
        strength: 1 grafts fully, 0 returns ``direction`` unchanged.

    Example::

        opt = tz.Optimizer(model.parameters(), tz.m.Graft(direction=tz.m.Sign(), magnitude=tz.m.Adam()), tz.m.LR(1e-3))
    """

    def __init__(self, direction: Chainable, magnitude: Chainable, tensorwise: bool = True, ord: Any = 2,
                 eps: float = 1e-6, strength: float = 1):
        _check(direction, "direction")
        _check(magnitude, "magnitude")
        check_ord(ord)
        super().__init__(dict(tensorwise=tensorwise, ord=ord, eps=eps, strength=strength),
                         direction=direction, magnitude=magnitude)

    def transform(self, objective, direction, magnitude):
        tensorwise, ord, eps = _graft_settings(self, objective.params)
        if not _tensors(direction):
            direction = full_like_list(direction, objective.params)
        if not _tensors(magnitude):
            magnitude = full_like_list(magnitude, direction)
        scales = graft_scales(norms(direction, ord, tensorwise), norms(magnitude, ord, tensorwise), eps)
        strength = scalar_or_list(self.settings.values(objective.params, "strength")[0])
        if strength == 1:
            out = writable(direction)
            torch._foreach_mul_(out, scales)
            return out
        grafted = torch._foreach_mul(direction, scales)
        return torch._foreach_lerp(direction, grafted, strength) if not isinstance(strength, list) else \
            [torch.lerp(d, g, s) for d, g, s in zip(direction, grafted, strength)]
