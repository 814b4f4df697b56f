"""Binary operations: the update is the first operand, the second is a number or a module.

A module operand is stepped on a copy of the objective carrying the incoming update, so
``tz.m.Add(tz.m.Mul(2))`` turns an update ``u`` into ``u + 2u``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.module import Module
from ...core.objective import Objective
from ...utils.foreach import map_scalar, scalar_or_list
from ._norms import check_ord, graft_scales, norms
from ._operands import check_number, full_like_list, is_chainable, run_operand

Operand = Chainable | float


class BinaryOperationBase(Module, ABC):
    """Base class of operations whose first operand is the update.

    Each keyword operand is either a module (or a sequence of modules, chained), which becomes a
    child and is replaced at every step by what it outputs when stepped on a copy of the
    objective, or a plain value passed through unchanged. Subclasses implement
    :meth:`transform`.

    Args:
        defaults: settings of the operation (per-parameter, like any module's).
        **operands: the other operands, by name, in the order they are evaluated.
    """

    inplace: bool = True
    """whether :meth:`transform` may modify ``update`` in place (False: it returns new tensors)."""
    number_operands: bool = True
    """operands that are not modules must be real numbers (checked at construction)."""
    nullable_operands: tuple[str, ...] = ()
    """operands that may also be None."""

    def __init__(self, defaults: dict[str, Any] | None, **operands: Chainable | Any):
        super().__init__(defaults)
        self._operand_names: list[str] = list(operands)
        self._constants: dict[str, Any] = {}
        for name, value in operands.items():
            if is_chainable(value):
                self.set_child(name, value)
            else:
                if self.number_operands:
                    check_number(value, name, allow_none=name in self.nullable_operands)
                self._constants[name] = value

    @abstractmethod
    def transform(self, objective: Objective, update: list[torch.Tensor], **operands: Any | list[torch.Tensor]) -> Iterable[torch.Tensor]:
        """Applies the operation to ``update`` and the evaluated ``operands``; returns the new update."""

    def _inplace(self) -> bool:
        return self.inplace

    def apply(self, objective: Objective) -> Objective:
        values = {name: run_operand(self, name, objective) if name in self.children else self._constants[name]
                  for name in self._operand_names}
        update = objective.get_updates() if self._inplace() else objective.peek_updates()
        out = self.transform(objective, update, **values)
        objective.set_updates(list(out), owned=True)
        return objective


def _is_tensors(x: Any) -> bool:
    return isinstance(x, list)


# ---------------------------------------------------------------------------- arithmetic
class Add(BinaryOperationBase):
    """``update + alpha * other``; ``other`` is a number or a module (then ``other(update)``).

    Args:
        other: number, or module(s) applied to the update.
        alpha: multiplier of ``other``.
    """

    def __init__(self, other: Operand, alpha: float = 1):
        super().__init__(dict(alpha=alpha), other=other)

    def transform(self, objective, update, other):
        alpha = scalar_or_list(self.settings.values(objective.params, "alpha")[0])
        _add_scaled(update, other, alpha, sign=1)
        return update


class Sub(BinaryOperationBase):
    """``update - alpha * other``; ``other`` is a number or a module (then ``other(update)``).

    Args:
        other: number, or module(s) applied to the update.
        alpha: multiplier of ``other``.
    """

    def __init__(self, other: Operand, alpha: float = 1):
        super().__init__(dict(alpha=alpha), other=other)

    def transform(self, objective, update, other):
        alpha = scalar_or_list(self.settings.values(objective.params, "alpha")[0])
        _add_scaled(update, other, alpha, sign=-1)
        return update


def _add_scaled(update: list[torch.Tensor], other: Any, alpha: Any, sign: int) -> None:
    """``update += sign * alpha * other`` in place."""
    if not _is_tensors(other):
        torch._foreach_add_(update, map_scalar(lambda a: sign * a * other, alpha))
        return
    if isinstance(alpha, list):
        other = torch._foreach_mul(other, alpha)
        alpha = 1
    if sign > 0:
        torch._foreach_add_(update, other, alpha=alpha)
    else:
        torch._foreach_sub_(update, other, alpha=alpha)


class RSub(BinaryOperationBase):
    """``other - update``; ``other`` is a number or a module (then ``other(update)``)."""

    def __init__(self, other: Operand):
        super().__init__({}, other=other)

    def _inplace(self) -> bool:
        return "other" not in self.children

    def transform(self, objective, update, other):
        if _is_tensors(other):
            return torch._foreach_sub(other, update)
        torch._foreach_neg_(update)
        torch._foreach_add_(update, other)
        return update


class Mul(BinaryOperationBase):
    """``update * other``; ``other`` is a number or a module (then ``other(update)``)."""

    def __init__(self, other: Operand):
        super().__init__({}, other=other)

    def transform(self, objective, update, other):
        torch._foreach_mul_(update, other)
        return update


class Div(BinaryOperationBase):
    """``update / other``; ``other`` is a number or a module (then ``other(update)``)."""

    def __init__(self, other: Operand):
        super().__init__({}, other=other)

    def transform(self, objective, update, other):
        torch._foreach_div_(update, other)
        return update


class RDiv(BinaryOperationBase):
    """``other / update``; ``other`` is a number or a module (then ``other(update)``)."""

    inplace = False

    def __init__(self, other: Operand):
        super().__init__({}, other=other)

    def transform(self, objective, update, other):
        if _is_tensors(other):
            return torch._foreach_div(other, update)
        out = full_like_list(other, update)
        torch._foreach_div_(out, update)
        return out


class Pow(BinaryOperationBase):
    """``update ** exponent``; ``exponent`` is a number or a module (then ``exponent(update)``)."""

    def __init__(self, exponent: Operand):
        super().__init__({}, exponent=exponent)

    def transform(self, objective, update, exponent):
        torch._foreach_pow_(update, exponent)
        return update


class RPow(BinaryOperationBase):
    """``other ** update``; ``other`` is a number or a module (then ``other(update)``)."""

    inplace = False

    def __init__(self, other: Operand):
        super().__init__({}, other=other)

    def transform(self, objective, update, other):
        return torch._foreach_pow(other, update)


# ---------------------------------------------------------------------------- elementwise comparisons
class Clip(BinaryOperationBase):
    """Clamps the update elementwise to ``[min, max]``.

    ``min`` and ``max`` are None (no bound), numbers, or modules, in which case the bounds are
    ``min(update)`` and ``max(update)``. Where ``min > max`` the result is ``max``, as in
    :func:`torch.clamp`.
    """

    nullable_operands = ("min", "max")

    def __init__(self, min: Operand | None = None, max: Operand | None = None):
        super().__init__({}, min=min, max=max)

    def transform(self, objective, update, min, max):
        if min is not None:
            torch._foreach_clamp_min_(update, min)
        if max is not None:
            torch._foreach_clamp_max_(update, max)
        return update


class Maximum(BinaryOperationBase):
    """Elementwise ``maximum(update, other(update))`` (``other`` may also be a number)."""

    def __init__(self, other: Operand):
        super().__init__({}, other=other)

    def transform(self, objective, update, other):
        if _is_tensors(other):
            torch._foreach_maximum_(update, other)
        else:
            torch._foreach_clamp_min_(update, other)
        return update


class Minimum(BinaryOperationBase):
    """Elementwise ``minimum(update, other(update))`` (``other`` may also be a number)."""

    def __init__(self, other: Operand):
        super().__init__({}, other=other)

    def transform(self, objective, update, other):
        if _is_tensors(other):
            torch._foreach_minimum_(update, other)
        else:
            torch._foreach_clamp_max_(update, other)
        return update


class Threshold(BinaryOperationBase):
    """Replaces the entries of the update on one side of ``threshold`` by ``value``.

    With ``update_above=True`` entries greater than ``threshold`` are kept and the others
    become ``value`` (as :func:`torch.nn.functional.threshold`); with ``update_above=False``
    entries less than ``threshold`` are kept. ``threshold`` and ``value`` are numbers or
    modules (then evaluated on the update).
    """

    def __init__(self, threshold: Operand, value: Operand, update_above: bool):
        super().__init__(dict(update_above=bool(update_above)), threshold=threshold, value=value)

    def transform(self, objective, update, threshold, value):
        above = self.settings.values(objective.params, "update_above")[0]
        n = len(update)
        thr = threshold if _is_tensors(threshold) else [threshold] * n
        val = value if _is_tensors(value) else [value] * n
        for u, t, v, a in zip(update, thr, val, above):
            keep = u > t if a else u < t
            if isinstance(v, torch.Tensor):
                torch.where(keep, u, v, out=u)
            else:
                u.masked_fill_(~keep, v)
        return update


# ---------------------------------------------------------------------------- signs
class CopySign(BinaryOperationBase):
    """Magnitude of the update with the sign of ``other(update)`` (``copysign(update, other)``)."""

    def __init__(self, other: Operand):
        super().__init__({}, other=other)

    def transform(self, objective, update, other):
        if _is_tensors(other):
            for u, o in zip(update, other):
                u.copysign_(o)
        else:
            for u in update:
                u.copysign_(other)
        return update


def _magnitude_with_sign_of(magnitude: Any, sign_of: list[torch.Tensor]) -> list[torch.Tensor]:
    """``copysign(magnitude, sign_of)`` as new tensors."""
    if _is_tensors(magnitude):
        return [torch.copysign(m, s) for m, s in zip(magnitude, sign_of)]
    return [torch.full_like(s, magnitude).copysign_(s) for s in sign_of]


class CopyMagnitude(BinaryOperationBase):
    """Magnitude of ``other(update)`` with the sign of the update (``copysign(other, update)``)."""

    inplace = False

    def __init__(self, other: Operand):
        super().__init__({}, other=other)

    def transform(self, objective, update, other):
        return _magnitude_with_sign_of(other, update)


class RCopySign(BinaryOperationBase):
    """``copysign(other(update), update)``: the reflected :class:`CopySign`, i.e. the magnitude of
    ``other(update)`` with the sign of the update (the same result as :class:`CopyMagnitude`)."""

    inplace = False

    def __init__(self, other: Operand):
        super().__init__({}, other=other)

    def transform(self, objective, update, other):
        return _magnitude_with_sign_of(other, update)


# ---------------------------------------------------------------------------- geometry
class GramSchimdt(BinaryOperationBase):
    """Makes the update orthogonal to ``v = other(update)`` by one Gram-Schmidt step.

    All tensors are treated as one vector: ``update - (<update, v> / <v, v>) v``. When ``v`` is
    zero the update is returned unchanged. (The name keeps the seed's spelling.)
    """

    def __init__(self, other: Chainable):
        super().__init__({}, other=other)

    def transform(self, objective, update, other):
        if not _is_tensors(other):
            other = full_like_list(other, update)
        uv = sum(torch.dot(u.reshape(-1), v.reshape(-1)) for u, v in zip(update, other))
        vv = sum(n.square() for n in torch._foreach_norm(other))
        coef = torch.where(vv > 0, uv / torch.where(vv > 0, vv, 1), 0)
        torch._foreach_sub_(update, torch._foreach_mul(other, coef))
        return update


class GraftInputToOutput(BinaryOperationBase):
    """The update rescaled to the norm of ``magnitude(update)`` ("grafting").

    ``update * ||magnitude(update)|| / max(||update||, eps)``, with norms per tensor
    (``tensorwise=True``) or over all tensors. Grafting combines the direction of one optimizer
    with the step length of another: Agarwal, Anil, Hazan, Koren & Zhang, 2020, "Disentangling
    Adaptive Gradient Methods from Learning Rates", arXiv:2002.11803.

    Args:
        magnitude: module(s) whose output gives the norm.
        tensorwise: norms per tensor (True) or of all tensors as one vector.
        ord: norm order, see :class:`Graft`.
        eps: lower bound of the denominator.
    """

    number_operands = False

    def __init__(self, magnitude: Chainable, tensorwise: bool = True, ord: Any = 2, eps: float = 1e-6):
        check_ord(ord)
        super().__init__(dict(tensorwise=tensorwise, ord=ord, eps=eps), magnitude=magnitude)

    def transform(self, objective, update, magnitude):
        tensorwise, ord, eps = _graft_settings(self, objective.params)
        if not _is_tensors(magnitude):
            magnitude = full_like_list(magnitude, update)
        scales = graft_scales(norms(update, ord, tensorwise), norms(magnitude, ord, tensorwise), eps)
        torch._foreach_mul_(update, scales)
        return update


class GraftOutputToInput(BinaryOperationBase):
    """``direction(update)`` rescaled to the norm of the update (the reverse of
    :class:`GraftInputToOutput`).

    ``direction(update) * ||update|| / max(||direction(update)||, eps)``.

    Args:
        direction: module(s) whose output gives the direction.
        tensorwise: norms per tensor (True) or of all tensors as one vector.
        ord: norm order, see :class:`Graft`.
        eps: lower bound of the denominator.
    """

    inplace = False
    number_operands = False

    def __init__(self, direction: Chainable, tensorwise: bool = True, ord: float = 2, eps: float = 1e-6):
        check_ord(ord)
        super().__init__(dict(tensorwise=tensorwise, ord=ord, eps=eps), direction=direction)

    def transform(self, objective, update, direction):
        tensorwise, ord, eps = _graft_settings(self, objective.params)
        if not _is_tensors(direction):
            direction = full_like_list(direction, update)
        scales = graft_scales(norms(direction, ord, tensorwise), norms(update, ord, tensorwise), eps)
        return torch._foreach_mul(direction, scales)


def _graft_settings(module: Module, params: list[torch.Tensor]) -> tuple[bool, Any, Any]:
    """``tensorwise`` and ``ord`` of the first parameter (they shape the computation), ``eps`` per tensor."""
    tensorwise, ord, eps = module.settings.values(params, "tensorwise", "ord", "eps")
    return bool(tensorwise[0]), ord[0], (scalar_or_list(eps) if tensorwise[0] else eps[0])
