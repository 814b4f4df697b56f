"""Norms used by the grafting operations, per tensor or over all tensors as one vector."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ...utils.norms import canonical_ord, global_norm, tensor_norms


def check_ord(ord: Any) -> None:
    """Raises ValueError / TypeError for an ``ord`` that :func:`norms` does not understand."""
    canonical_ord(ord)


def norms(tensors: Sequence[torch.Tensor], ord: Any, tensorwise: bool) -> list[torch.Tensor]:
    """One 0-d tensor per element of ``tensors``: its norm, or (``tensorwise=False``) the norm of
    all tensors concatenated, repeated (``ord`` as in :mod:`torchzero.utils.norms`)."""
    ord = canonical_ord(ord)
    if tensorwise:
        return tensor_norms(tensors, ord)
    return [global_norm(tensors, ord)] * len(tensors)


def graft_scales(direction_norms: list[torch.Tensor], magnitude_norms: list[torch.Tensor], eps: Any) -> list[torch.Tensor]:
    """``|magnitude| / max(|direction|, eps)`` for each tensor (``eps`` a float or per-tensor list)."""
    if not isinstance(eps, list):
        eps = [eps] * len(direction_norms)
    if direction_norms and all(d is direction_norms[0] for d in direction_norms) and all(m is magnitude_norms[0] for m in magnitude_norms) and all(e == eps[0] for e in eps):
        s = magnitude_norms[0] / direction_norms[0].clamp(min=eps[0])
        return [s] * len(direction_norms)
    return [m / d.clamp(min=e) for d, m, e in zip(direction_norms, magnitude_norms, eps)]
