"""Clipping, normalizing and centralizing the update: ClipValue, ClipNorm, Normalize, Centralize.

The norm-based modules work per parameter (``dim=None``), per slice along some dimensions
(``dim`` an int or a sequence; ``inverse_dims`` to name the other dimensions instead), or on all
parameters as one vector (``dim='global'``). A parameter or slice with fewer than ``min_size``
elements is left as it is, and so is one whose norm is not above ``1e-12`` (nothing to scale).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from ...core.transform import TensorTransform
from ...utils.foreach import scalar_or_list
from ...utils.norms import Ord, canonical_ord, check_dim, global_norm, norm, resolve_dims, tensor_norms

Dim = int | Sequence[int] | Literal["global"] | None
TINY = 1e-12


def _factor(n: torch.Tensor, target: Any, clip: bool) -> torch.Tensor:
    """Multiplier that brings norm ``n`` to ``target`` (``clip``: only when it is larger)."""
    big = n > TINY
    if clip:
        big = big & (n > target)
    return torch.where(big, target / n, torch.ones_like(n))


class _PerTensor(TensorTransform):
    """Shared plumbing: splits the parameters into those handled whole, by slices, or skipped."""

    inplace = False

    def _whole(self, t: torch.Tensor, s: Mapping[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    def _sliced(self, t: torch.Tensor, dims: tuple[int, ...], s: Mapping[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    def _global(self, tensors: list[torch.Tensor], s: Mapping[str, Any]) -> list[torch.Tensor]:
        raise NotImplementedError

    def _whole_many(self, tensors: list[torch.Tensor], settings: list[Mapping[str, Any]]) -> list[torch.Tensor]:
        return [self._whole(t, s) for t, s in zip(tensors, settings)]

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: Any, settings: Sequence[Mapping[str, Any]]) -> list[torch.Tensor]:
        if settings[0]["dim"] == "global":
            return self._global(tensors, settings[0])
        out: list[torch.Tensor | None] = [None] * len(tensors)
        whole: list[int] = []
        for i, (t, s) in enumerate(zip(tensors, settings)):
            dims = resolve_dims(t.ndim, s["dim"], s["inverse_dims"])
            size = 1
            for d in dims:
                size *= t.shape[d]
            if t.ndim == 0:
                # as in torch reductions, a scalar counts as having one dimension (0 or -1) of size 1
                has = bool(resolve_dims(1, s["dim"], s["inverse_dims"]))
            else:
                has = bool(dims)
            if not has or size < s["min_size"]:
                out[i] = t.clone()
            elif len(dims) == t.ndim:
                whole.append(i)
            else:
                out[i] = self._sliced(t, dims, s)
        if whole:
            for i, o in zip(whole, self._whole_many([tensors[i] for i in whole], [settings[i] for i in whole])):
                out[i] = o
        return out  # type: ignore[return-value]


class _NormScale(_PerTensor):
    _clip = True
    _target_key = "max_norm"

    def _check(self, ord: Ord, dim: Any, min_size: int) -> None:
        canonical_ord(ord)
        check_dim(dim)
        if int(min_size) < 0:
            raise ValueError(f"min_size must be >= 0, got {min_size}")

    def _whole(self, t: torch.Tensor, s: Mapping[str, Any]) -> torch.Tensor:
        n = norm(t, canonical_ord(s["ord"]))
        return t * _factor(n, s[self._target_key], self._clip)

    def _whole_many(self, tensors: list[torch.Tensor], settings: list[Mapping[str, Any]]) -> list[torch.Tensor]:
        ords = [s["ord"] for s in settings]
        if any(o is not ords[0] and o != ords[0] for o in ords):
            return super()._whole_many(tensors, settings)
        ns = torch.stack(tensor_norms(tensors, canonical_ord(ords[0])))
        target = scalar_or_list([s[self._target_key] for s in settings])
        if isinstance(target, list):
            target = torch.tensor(target, dtype=ns.dtype, device=ns.device)
        factors = _factor(ns, target, self._clip)
        return list(torch._foreach_mul(tensors, list(factors.unbind(0))))

    def _sliced(self, t: torch.Tensor, dims: tuple[int, ...], s: Mapping[str, Any]) -> torch.Tensor:
        n = norm(t, canonical_ord(s["ord"]), dims, keepdim=True)
        return t * _factor(n, s[self._target_key], self._clip)

    def _global(self, tensors: list[torch.Tensor], s: Mapping[str, Any]) -> list[torch.Tensor]:
        n = global_norm(tensors, canonical_ord(s["ord"]))
        return list(torch._foreach_mul(tensors, _factor(n, s[self._target_key], self._clip)))


class ClipNorm(_NormScale):
    """Clips the norm of the update to at most ``max_norm`` (Pascanu, Mikolov & Bengio, 2013,
    "On the difficulty of training recurrent neural networks", arXiv:1211.5063)::

        u <- u * max_norm / ||u||     where ||u|| > max_norm

    With ``dim='global'`` and ``ord=2``, placed before the other modules, this is
    ``torch.nn.utils.clip_grad_norm_`` (which adds ``1e-6`` to the norm).

    Args:
        max_norm: largest allowed norm.
        ord: the norm: a number ``p``, ``'l0'`` ... ``'l4'``, ``'linf'``, ``'mad'`` (mean absolute
            value), ``'std'``, ``'var'`` or ``'sum'``.
        dim: ``None`` (each parameter), an int or sequence (norms of slices along those dimensions
            of the parameters that have them), or ``'global'`` (all parameters as one vector).
        inverse_dims: reduce over all dimensions except ``dim``.
        min_size: parameters or slices with fewer elements are not clipped.
    """

    def __init__(self, max_norm: float, ord: Ord = 2, dim: Dim = None, inverse_dims: bool = False, min_size: int = 1):
        self._check(ord, dim, min_size)
        super().__init__(dict(max_norm=max_norm, ord=ord, dim=dim, inverse_dims=inverse_dims, min_size=min_size))


class Normalize(_NormScale):
    """Rescales the update to norm ``norm_value``: ``u <- u * norm_value / ||u||``.

    Normalized gradient descent (e.g. Hazan, Levy & Shalev-Shwartz, 2015, "Beyond Convexity:
    Stochastic Quasi-Convex Optimization", arXiv:1507.02030) takes steps of fixed length.

    Args:
        norm_value: the norm of the result.
        ord: the norm (see :class:`ClipNorm`).
        dim: ``None``, an int / sequence, or ``'global'`` (see :class:`ClipNorm`).
        inverse_dims: reduce over all dimensions except ``dim``.
        min_size: parameters or slices with fewer elements are left as they are.
    """

    _clip = False
    _target_key = "norm_value"

    def __init__(self, norm_value: float = 1, ord: Ord = 2, dim: Dim = None, inverse_dims: bool = False, min_size: int = 1):
        self._check(ord, dim, min_size)
        super().__init__(dict(norm_value=norm_value, ord=ord, dim=dim, inverse_dims=inverse_dims, min_size=min_size))


class Centralize(_PerTensor):
    """Subtracts the mean of the update: ``u <- u - mean(u)`` over each parameter (``dim=None``),
    over slices along ``dim``, or over all parameters (``dim='global'``).

    Gradient centralization (Yong, Huang, Hua & Zhang, 2020, "Gradient Centralization: A New
    Optimization Technique for Deep Neural Networks", ECCV, arXiv:2004.01461) removes the mean of
    each output unit's weight gradient, i.e. of the slices over all dimensions but the first:
    ``Centralize(dim=0, inverse_dims=True)``.

    Args:
        dim: ``None``, an int / sequence, or ``'global'`` (see :class:`ClipNorm`).
        inverse_dims: centralize over all dimensions except ``dim``.
        min_size: parameters or slices with fewer elements are left as they are.
    """

    def __init__(self, dim: Dim = None, inverse_dims: bool = False, min_size: int = 2):
        check_dim(dim)
        super().__init__(dict(dim=dim, inverse_dims=inverse_dims, min_size=min_size))

    def _whole(self, t: torch.Tensor, s: Mapping[str, Any]) -> torch.Tensor:
        return t - t.mean()

    def _whole_many(self, tensors: list[torch.Tensor], settings: list[Mapping[str, Any]]) -> list[torch.Tensor]:
        return list(torch._foreach_sub(tensors, [t.mean() for t in tensors]))

    def _sliced(self, t: torch.Tensor, dims: tuple[int, ...], s: Mapping[str, Any]) -> torch.Tensor:
        return t - t.mean(dim=dims, keepdim=True)

    def _global(self, tensors: list[torch.Tensor], s: Mapping[str, Any]) -> list[torch.Tensor]:
        n = sum(t.numel() for t in tensors)
        mean = torch.stack([t.sum() for t in tensors]).sum() / max(n, 1)
        return list(torch._foreach_sub(tensors, mean))


class ClipValue(TensorTransform):
    """Clips every element of the update to ``[-value, value]``; placed before the other modules this
    is ``torch.nn.utils.clip_grad_value_``.

    Args:
        value: largest allowed magnitude.
    """

    inplace = False

    def __init__(self, value: float):
        super().__init__(dict(value=value))

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: Any, settings: Any) -> list[torch.Tensor]:
        v = scalar_or_list(self.settings.values(params, "value")[0])
        lo = [-x for x in v] if isinstance(v, list) else -v
        out = torch._foreach_clamp_min(tensors, lo)
        torch._foreach_clamp_max_(out, v)
        return list(out)
