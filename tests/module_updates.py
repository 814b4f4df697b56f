"""Feeding fixed gradients through a chain and reading back its updates (shared by module tests)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

import torchzero as tz


def updates(modules: Sequence[Any], seq: Sequence[Sequence[torch.Tensor]],
            groups: Callable[[list[torch.Tensor]], Any] | None = None) -> list[list[torch.Tensor]]:
    """Steps ``modules`` once per gradient list of ``seq`` and returns each step's update. The
    parameters are zeroed before every step (so the update is minus the new parameters): only for
    modules that do not read the parameters. ``groups(params)`` builds parameter groups."""
    ps = [torch.zeros_like(g).requires_grad_(True) for g in seq[0]]
    opt = tz.Optimizer(groups(ps) if groups else ps, *modules)
    out = []
    for gs in seq:
        with torch.no_grad():
            for p in ps:
                p.zero_()
        for p, g in zip(ps, gs):
            p.grad = g.clone()
        opt.step()
        out.append([-p.detach().clone() for p in ps])
    return out


def once(modules: Sequence[Any], tensors: Sequence[torch.Tensor],
         groups: Callable[[list[torch.Tensor]], Any] | None = None) -> list[torch.Tensor]:
    """The update of one step on ``tensors``."""
    return updates(modules, [tensors], groups)[0]
