"""Small helpers shared by the ops tests."""
from __future__ import annotations

import torch

import torchzero as tz


def apply(modules, update, grads=None, params=None):
    """Runs ``modules`` once on copies of ``update`` (a list of tensors) and returns the result."""
    update = [u.clone() for u in update]
    if params is None:
        params = [torch.zeros_like(u, requires_grad=True) for u in update]
    return tz.step_tensors(modules if isinstance(modules, list) else [modules], update, params=params, grads=grads)


def run_steps(modules, grads_seq, groups=None):
    """Steps an optimizer made of ``modules`` with the given gradients (one list per step) and
    returns the update of each step as one flat tensor."""
    params = [torch.zeros_like(g, requires_grad=True) for g in grads_seq[0]]
    spec = params if groups is None else [dict(params=[p], **g) for p, g in zip(params, groups)]
    opt = tz.Optimizer(spec, *modules)
    outs = []
    for grads in grads_seq:
        before = [p.detach().clone() for p in params]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        outs.append(torch.cat([(b - p.detach()).reshape(-1) for b, p in zip(before, params)]))
    return outs


def randn(*shapes, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=dtype) for s in shapes]


def flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])
