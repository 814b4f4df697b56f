"""Hessian-vector products for :meth:`Objective.hessian_vector_product`."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .objective import Objective


def _norm(ts: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in ts]))


def hvp(obj: "Objective", z: Sequence[torch.Tensor], rgrad: Sequence[torch.Tensor] | None, at_x0: bool,
        hvp_method: str, h: float, retain_graph: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    z = list(z)
    params = obj.params
    if hvp_method in ("autograd", "batched_autograd"):
        if rgrad is None:
            with torch.enable_grad():
                loss = obj.closure(False) if obj.closure is not None else None
                if loss is None:
                    raise RuntimeError("autograd hessian-vector products need a closure")
                if at_x0 and obj.loss is None:
                    obj.loss = obj.loss_approx = loss.detach()
                rgrad = list(torch.autograd.grad(loss, params, create_graph=True, allow_unused=True))
                rgrad = [torch.zeros_like(p) if g is None else g for p, g in zip(params, rgrad)]
                if at_x0 and obj.grads is None:
                    obj.grads = [g.detach() for g in rgrad]
        with torch.enable_grad():
            hz = torch.autograd.grad(rgrad, params, grad_outputs=z, retain_graph=True, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, hz)], list(rgrad)

    if hvp_method not in ("fd_forward", "fd_central"):
        raise ValueError(f"unknown hvp_method {hvp_method!r}")
    znorm = float(_norm(z))
    if znorm == 0:
        return [torch.zeros_like(p) for p in params], rgrad
    step = h / znorm
    x0 = [p.detach().clone() for p in params]
    if hvp_method == "fd_forward":
        if rgrad is None:
            rgrad = [g.clone() for g in (obj.get_grads() if at_x0 else obj.get_grads(at_x0=False))]
        with torch.no_grad():
            torch._foreach_add_(params, z, alpha=step)
        g_plus = [g.clone() for g in obj.get_grads(at_x0=False)]
        with torch.no_grad():
            for p, x in zip(params, x0):
                p.copy_(x)
        hz = torch._foreach_sub(g_plus, rgrad)
        torch._foreach_div_(hz, step)
        return hz, rgrad
    with torch.no_grad():
        torch._foreach_add_(params, z, alpha=step)
    g_plus = [g.clone() for g in obj.get_grads(at_x0=False)]
    with torch.no_grad():
        torch._foreach_add_(params, z, alpha=-2 * step)
    g_minus = [g.clone() for g in obj.get_grads(at_x0=False)]
    with torch.no_grad():
        for p, x in zip(params, x0):
            p.copy_(x)
    hz = torch._foreach_sub(g_plus, g_minus)
    torch._foreach_div_(hz, 2 * step)
    return hz, rgrad
