"""Natural gradient with the empirical Fisher information matrix."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.transform import Transform
from ...utils.params import vec_to_tensors


def _per_sample_jacobian(losses: torch.Tensor, params: list[torch.Tensor], batched: bool) -> torch.Tensor:
    """``G`` with row ``i`` the gradient of ``losses[i]`` over all parameters (``m x n``)."""
    m = losses.numel()
    flat = losses.reshape(-1)
    if batched and m > 1:
        eye = torch.eye(m, dtype=flat.dtype, device=flat.device)
        rows = torch.autograd.grad(flat, params, grad_outputs=eye, is_grads_batched=True, allow_unused=True)
        cols = [torch.zeros(m, p.numel(), dtype=p.dtype, device=p.device) if r is None else r.reshape(m, -1)
                for r, p in zip(rows, params)]
        return torch.cat(cols, dim=1)
    out = []
    for i in range(m):
        gi = torch.autograd.grad(flat[i], params, retain_graph=i < m - 1, allow_unused=True)
        out.append(torch.cat([torch.zeros(p.numel(), dtype=p.dtype, device=p.device) if g is None else g.reshape(-1)
                              for g, p in zip(gi, params)]))
    return torch.stack(out)


class NaturalGradient(Transform):
    """Natural gradient descent with the empirical Fisher information matrix.

    Amari, S. (1998), "Natural gradient works efficiently in learning", Neural Computation 10(2);
    empirical Fisher and its limits: Kunstner, Balles & Hennig (2019), "Limitations of the empirical
    Fisher approximation for natural gradient descent", NeurIPS (arXiv:1905.12558).

    The loss must be a vector of ``m`` per-sample losses (returned by the closure, called with
    ``backward=False``, or passed as ``step(loss=...)`` with its graph). With ``G`` the ``m x n``
    matrix of per-sample gradients (batched autograd when ``batched``), ``F = G^T G`` is the
    empirical Fisher. Without forming any ``n x n`` matrix (only the ``m x m`` kernel ``G G^T``)::

        sqrt=False:  update = (F + reg I)^{-1} G^T 1 = G^T (G G^T + reg I)^{-1} 1
        sqrt=True:   update = (F + reg I)^{-1/2} g = G^T U (L + reg)^{-1/2} U^T w,   G G^T = U L U^T

    where ``g = G^T w`` is the gradient: ``w = 1`` (sum of per-sample gradients) or, with
    ``gn_grad``, ``w = f`` (the Gauss-Newton gradient ``G^T f`` of ``sum f^2 / 2``). The square root
    (``sqrt``) whitens the gradient and is more robust when the losses are not true per-sample
    terms. ``gn_grad`` also sets the objective's gradient (seen by later modules); the kernel solve of
    ``sqrt=False`` always uses ``w = 1``. ``step`` returns the vector of losses.

    Args:
        reg: multiple of the identity added to the empirical Fisher.
        sqrt: use ``F^{-1/2}`` (whitening) instead of ``F^{-1}``.
        gn_grad: use ``G^T f`` as the gradient instead of ``G^T 1``.
        batched: compute the per-sample gradients in one batched autograd call (else a loop).
    """

    def __init__(self, reg: float = 1e-8, sqrt: bool = False, gn_grad: bool = False, batched: bool = True):
        super().__init__(dict(reg=reg, sqrt=sqrt, gn_grad=gn_grad, batched=batched), uses_loss=True)

    def apply_states(self, objective: Any, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Any:
        params = objective.params
        s = settings[0]
        losses = objective.loss
        if losses is None or not losses.requires_grad:
            if objective.closure is None:
                raise RuntimeError("NaturalGradient needs a closure (or step(loss=...) with the per-sample losses and their graph)")
            with torch.enable_grad():
                losses = objective.closure(False)
        if not isinstance(losses, torch.Tensor) or not losses.requires_grad:
            raise RuntimeError("NaturalGradient needs per-sample losses with a graph: return them from closure(backward=False)")
        G = _per_sample_jacobian(losses, params, s["batched"])
        f = losses.detach().reshape(-1).to(G.dtype)
        objective.loss = objective.loss_approx = losses.detach()
        ones = torch.ones_like(f)
        w = f if s["gn_grad"] else ones
        objective.grads = vec_to_tensors(G.T @ w, params)
        K = G @ G.T
        reg = s["reg"]
        if s["sqrt"]:
            L, U = torch.linalg.eigh(K)
            inv_sqrt = (L.clamp(min=0) + reg).rsqrt()
            direction = G.T @ (U @ (inv_sqrt * (U.T @ w)))
        else:
            K.diagonal().add_(reg)
            direction = G.T @ torch.linalg.solve(K, ones)
        objective.set_updates(vec_to_tensors(direction, params))
        return objective
