"""Elementwise functions of the update."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ...core.transform import TensorTransform
from ...utils.foreach import scalar_or_list


class Abs(TensorTransform):
    """``|update|``."""

    def __init__(self):
        super().__init__()

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        torch._foreach_abs_(tensors)
        return tensors


class Sign(TensorTransform):
    """``sign(update)`` (-1, 0 or 1 elementwise)."""

    def __init__(self):
        super().__init__()

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        torch._foreach_sign_(tensors)
        return tensors


class Exp(TensorTransform):
    """``exp(update)``."""

    def __init__(self):
        super().__init__()

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        torch._foreach_exp_(tensors)
        return tensors


class Sqrt(TensorTransform):
    """``sqrt(update)`` (NaN where the update is negative)."""

    def __init__(self):
        super().__init__()

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        torch._foreach_sqrt_(tensors)
        return tensors


class Negate(TensorTransform):
    """``-update``."""

    def __init__(self):
        super().__init__()

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        torch._foreach_neg_(tensors)
        return tensors


class Reciprocal(TensorTransform):
    """``1 / (update + eps)``.

    Args:
        eps: added to the update before taking the reciprocal.
    """

    def __init__(self, eps=0):
        super().__init__(dict(eps=eps))

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        eps = scalar_or_list(self.settings.values(params, "eps")[0])
        if eps != 0:
            torch._foreach_add_(tensors, eps)
        torch._foreach_reciprocal_(tensors)
        return tensors


class NanToNum(TensorTransform):
    """Replaces NaN, +inf and -inf in the update by numbers, as :func:`torch.nan_to_num`.

    Args:
        nan: replacement of NaN (0 when None).
        posinf: replacement of +inf (the largest finite value of the dtype when None).
        neginf: replacement of -inf (the lowest finite value of the dtype when None).
    """

    def __init__(self, nan=None, posinf=None, neginf=None):
        super().__init__(dict(nan=nan, posinf=posinf, neginf=neginf))

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        nan, posinf, neginf = self.settings.values(params, "nan", "posinf", "neginf")
        for t, a, b, c in zip(tensors, nan, posinf, neginf):
            torch.nan_to_num_(t, nan=0.0 if a is None else a, posinf=b, neginf=c)
        return tensors


def _check_method_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if not name or name.startswith("_") or not callable(getattr(torch.Tensor, name, None)):
        raise ValueError(f"name must be a public method of torch.Tensor, got {name!r}")
    return name


class CustomUnaryOperation(TensorTransform):
    """Calls the tensor method ``name`` on each tensor of the update: ``getattr(t, name)()``.

    ``name`` must be a public method of :class:`torch.Tensor` that takes no arguments and
    returns a tensor of the same shape (``"abs"``, ``"square"``, ``"sign"``, ``"neg_"``...).
    Only method names are accepted, never arbitrary callables, so the module can be sent in a
    spec. When a ``torch._foreach_<name>`` kernel exists it is used instead of a loop.

    Args:
        name: name of the method.
    """

    def __init__(self, name: str):
        super().__init__()
        self._name = _check_method_name(name)

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        fe = getattr(torch, f"_foreach_{self._name}", None)
        if fe is not None:
            out = fe(tensors)
            return tensors if out is None else out
        return [getattr(t, self._name)() for t in tensors]


class UnaryLambda(TensorTransform):
    """Applies ``fn`` to the whole update: ``fn(list_of_tensors) -> list_of_tensors``.

    ``fn`` receives tensors it may modify in place. A module holding a Python callable can be
    sent in a spec only when ``fn`` is registered with
    :func:`torchzero.core.spec.register_callable` on both sides; otherwise :func:`to_spec`
    raises :class:`~torchzero.core.spec.SpecError`.
    """

    def __init__(self, fn: Callable[[list[torch.Tensor]], list[torch.Tensor]]):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        super().__init__()
        self._fn = fn

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        return list(self._fn(tensors))


class UnaryParameterwiseLambda(TensorTransform):
    """Applies ``fn`` to each tensor of the update: ``fn(tensor) -> tensor``.

    ``fn`` receives tensors it may modify in place. Like :class:`UnaryLambda`, the module can be
    sent in a spec only when ``fn`` is registered with
    :func:`torchzero.core.spec.register_callable`.
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        super().__init__()
        self._fn = fn

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        return [self._fn(t) for t in tensors]
