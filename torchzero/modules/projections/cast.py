"""Projections that change how tensors are stored: dtype / device casts and complex-as-real views."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from ...core.module import Module
from .projection import ProjectionBase


class To(ProjectionBase):
    """Runs ``modules`` with every tensor cast to ``dtype`` and moved to ``device`` (e.g. float64
    state for float32 parameters, or optimizer state on another device); the update is cast back.

    Args:
        modules: the modules.
        dtype: dtype in the projected space (None: keep).
        device: device in the projected space (None: keep).
    """

    def __init__(self, modules: Module | Sequence[Module], dtype: torch.dtype | None, device: torch.device | str | int | None = None):
        super().__init__(modules, project_update=True, project_params=True, project_grad=True)
        self.dtype = dtype
        self.device = None if device is None else torch.device(device) if not isinstance(device, int) else torch.device("cuda", device)

    def project(self, tensors, params, grads, loss, states, settings, current):
        return [t.to(dtype=self.dtype, device=self.device) for t in tensors]

    def unproject(self, projected_tensors, params, grads, loss, states, settings, current):
        return [t.to(dtype=p.dtype, device=p.device) for t, p in zip(projected_tensors, params)]


class ViewAsReal(ProjectionBase):
    """Runs ``modules`` with complex tensors viewed as real ones (a trailing dimension of size 2 holds
    the real and imaginary parts, ``torch.view_as_real``); real tensors are left as they are.

    Args:
        modules: the modules.
    """

    def __init__(self, modules: Module | Sequence[Module]):
        super().__init__(modules, project_update=True, project_params=True, project_grad=True)

    def project(self, tensors, params, grads, loss, states, settings, current):
        return [torch.view_as_real(t) if t.is_complex() else t for t in tensors]

    def unproject(self, projected_tensors, params, grads, loss, states, settings, current):
        return [torch.view_as_complex(t.contiguous()) if p.is_complex() else t for t, p in zip(projected_tensors, params)]
