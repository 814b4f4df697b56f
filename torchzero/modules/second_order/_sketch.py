"""Hessian-times-matrix products ``H S`` for the sketched second-order modules."""
from __future__ import annotations

import torch

from ...core.objective import Objective
from ...utils.params import tensors_to_vec, vec_to_tensors


def hessian_times(objective: Objective, S: torch.Tensor, hvp_method: str, h: float) -> torch.Tensor:
    """``H S`` (``n x k``) at the current parameters, one Hessian-vector product per column of ``S``.

    ``batched_autograd`` differentiates the gradient once against all ``k`` columns
    (``is_grads_batched``); the other methods call :meth:`Objective.hessian_vector_product` per column.
    The loss and gradient at the current point are cached on ``objective`` as a side effect.
    """
    params = objective.params
    k = S.shape[1]
    if hvp_method == "batched_autograd":
        if objective.closure is None:
            raise RuntimeError("Hessian-vector products need a closure; pass one to optimizer.step(closure)")
        with torch.enable_grad():
            loss = objective.closure(False)
            if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
                raise RuntimeError("autograd Hessian-vector products need a closure whose loss has a graph")
            g = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
            g = [torch.zeros_like(p) if gi is None else gi for gi, p in zip(g, params)]
            if objective.loss is None:
                objective.loss = objective.loss_approx = loss.detach()
            if objective.grads is None:
                objective.grads = [gi.detach() for gi in g]
            outs = [t for t, gi in zip(params, g) if gi.requires_grad]
            if not outs:
                return torch.zeros_like(S)
            sizes = [p.numel() for p in params]
            cols = [c.T.reshape(k, *p.shape) for c, p in zip(torch.split(S, sizes, 0), params)]
            used = [(gi, c) for gi, c in zip(g, cols) if gi.requires_grad]
            HS = torch.autograd.grad([u[0] for u in used], params, grad_outputs=[u[1] for u in used],
                                     is_grads_batched=True, allow_unused=True)
        return torch.cat([(torch.zeros(k, p.numel(), dtype=S.dtype, device=S.device) if r is None
                           else r.detach().reshape(k, -1)) for r, p in zip(HS, params)], 1).T
    rgrad = None
    out = torch.empty_like(S)
    for i in range(k):
        Hz, rgrad = objective.hessian_vector_product(vec_to_tensors(S[:, i], params), rgrad, True, hvp_method, h)  # type: ignore[arg-type]
        out[:, i] = tensors_to_vec(Hz)
    return out
