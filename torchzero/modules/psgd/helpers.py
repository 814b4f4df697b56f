"""Pieces shared by the PSGD preconditioners (Li, 2015, arXiv:1512.04202; Li, 2024, arXiv:2402.11858).

All PSGD variants fit a preconditioner ``P = Q^T Q`` to pairs ``(v, h)`` by minimising the criterion

    c(P) = E[h^T P h + v^T P^{-1} v]

whose minimiser satisfies ``P E[h h^T] P = E[v v^T]``. With ``h = H v`` (a Hessian-vector product) and
``E[v v^T] = I`` this gives ``P = |H|^{-1}`` (Newton-type preconditioner); with ``h = g`` a gradient and
``v`` integrated out, ``P = (E[g g^T])^{-1/2}`` (whitening preconditioner). ``Q`` lives on a matrix Lie
group and is moved along the natural gradient of ``c``, with the step size normalised by a running
estimate ``L`` of the Lipschitz constant of the criterion in that geometry.

The random draws (probes of the norm estimates, damping noise) use the global generator, in the
order the reference draws them, because the modules have no ``seed`` argument.
"""
from __future__ import annotations

from typing import Literal

import torch

DQ = Literal["QUAD4P", "QUAD", "QEP", "EQ", "QEQ", "Q0p5EQ1p5", "Q0.5EQ1.5"]
GEOMETRIES = ("QUAD4P", "QUAD", "QEP", "EQ", "QEQ", "Q0p5EQ1p5", "Q0.5EQ1.5")
HVP_METHODS = ("batched_autograd", "autograd", "fd_forward", "fd_central")
DISTRIBUTIONS = ("normal", "gaussian", "uniform", "sphere", "rademacher")


def check_common(lr_preconditioner: float, betaL: float, update_probability: float) -> None:
    """Raises ``ValueError`` naming a bad shared argument."""
    if lr_preconditioner < 0:
        raise ValueError(f"lr_preconditioner must be >= 0, got {lr_preconditioner}")
    if not 0 <= betaL < 1:
        raise ValueError(f"betaL must be in [0, 1), got {betaL}")
    if not 0 <= update_probability <= 1:
        raise ValueError(f"update_probability must be in [0, 1], got {update_probability}")


def check_dQ(dQ: str) -> str:
    if dQ not in GEOMETRIES:
        raise ValueError(f"dQ must be one of {GEOMETRIES}, got {dQ!r}")
    return "Q0.5EQ1.5" if dQ == "Q0p5EQ1p5" else dQ


def check_hvp(hvp_method: str, distribution: str) -> None:
    if hvp_method not in HVP_METHODS:
        raise ValueError(f"hvp_method must be one of {HVP_METHODS}, got {hvp_method!r}")
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")


def update_lipschitz(L: torch.Tensor, ell: torch.Tensor, betaL: float) -> torch.Tensor:
    """``L <- max(betaL L + (1 - betaL) ell, ell)`` in place: a running estimate that never lags
    behind the current bound ``ell`` (so ``lr / L`` is never too large)."""
    L.copy_(torch.maximum(betaL * L + (1 - betaL) * ell, ell))
    return L


def _power_bound(A: torch.Tensor, scale: torch.Tensor, k: int, half_iters: int) -> torch.Tensor:
    tiny = torch.finfo(A.dtype).smallest_normal
    A = A / scale
    # start from the row of largest norm, perturbed by k random probes aligned with it
    row = A[torch.argmax(torch.linalg.vector_norm(A, dim=1))]
    V = torch.randn(k, A.shape[1], dtype=A.dtype, device=A.device)
    V = row + torch.sign((V * row).sum(1, keepdim=True)) * V
    for _ in range(half_iters):
        V = V @ A
        V = V / (torch.linalg.vector_norm(V, dim=1, keepdim=True) + tiny)
        V = V @ A
    return scale * torch.linalg.vector_norm(V, dim=1).amax()


def spd_norm_lower_bound(A: torch.Tensor, k: int = 32, half_iters: int = 2) -> torch.Tensor:
    """A cheap lower bound of the spectral norm of a symmetric positive semi-definite ``A``: a few
    power iterations from ``k`` random starting vectors, after scaling ``A`` by its largest diagonal."""
    scale = A.diagonal().amax() + torch.finfo(A.dtype).smallest_normal
    return _power_bound(A, scale, k, half_iters)


def skew_norm_lower_bound(A: torch.Tensor, k: int = 32, half_iters: int = 2) -> torch.Tensor:
    """The same lower bound for a skew-symmetric ``A`` (scaled by its largest entry)."""
    scale = A.abs().amax() + torch.finfo(A.dtype).smallest_normal
    return _power_bound(A, scale, k, half_iters)


def procrustes_step(Q: torch.Tensor, max_step_size: float = 1 / 8) -> None:
    """One in-place step towards the symmetric polar factor of ``Q``.

    Rotates ``Q <- exp(a R) Q`` with the skew generator ``R = Q^T - Q`` (normalised to unit norm), which
    leaves ``Q^T Q`` unchanged and increases ``tr(Q)``, i.e. solves ``min_U ||U Q - I||_F`` over rotations
    online. ``exp(a R)`` is expanded to second order, so ``a <= 1/8``; when the second-order term is
    negative ``a`` is the maximiser ``-tr(RQ) / tr(RRQ)`` of the quadratic model.
    """
    R = Q.T - Q
    R = R / (skew_norm_lower_bound(R) + torch.finfo(R.dtype).smallest_normal)
    RQ = R @ Q
    tr_RQ = torch.trace(RQ)
    if tr_RQ > 0:
        RRQ = R @ RQ
        tr_RRQ = torch.trace(RRQ)
        a = torch.where(tr_RRQ < 0, torch.clamp(-tr_RQ / tr_RRQ, max=max_step_size), torch.full_like(tr_RQ, max_step_size))
        Q.add_(a * (RQ + 0.5 * a * RRQ))


def whiten_init_scale(g: torch.Tensor) -> float:
    """``(mean |g|^4)^(-1/8)``: makes ``P = scale^2 I`` whiten a gradient of that magnitude."""
    return float(g.abs().pow(4).mean().pow(-1 / 8))


def newton_init_scale(v: torch.Tensor, h: torch.Tensor) -> float:
    """``(mean v^2)^(1/4) (mean h^4)^(-1/8)``: ``P = scale^2 I`` then maps ``h`` roughly to the size of ``v``
    (the 4-th moment makes the estimate err towards a small, safe preconditioner)."""
    return float(v.pow(2).mean().pow(1 / 4) * h.abs().pow(4).mean().pow(-1 / 8))
