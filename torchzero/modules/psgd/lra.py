"""PSGD with a low-rank-plus-diagonal preconditioner: PSGDLRAWhiten and PSGDLRANewton."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import TensorTransform, Transform
from ...utils.params import tensors_to_vec, vec_to_tensors
from ..curvature.hutchinson import random_vectors
from .helpers import check_common, check_hvp, newton_init_scale, update_lipschitz, whiten_init_scale

# Q = (I + U V^T) diag(d) with U, V of shape (n, r) and d of shape (n, 1); P = Q^T Q.


def lra_init(n: int, rank: int, scale: float, dtype: torch.dtype, device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``U``, ``V`` random with Frobenius norm ``sqrt(0.1)`` (rank ``min(rank, n - 1)``, at least 1),
    ``d = scale``; zero Lipschitz estimates for ``U``, ``V`` and ``d``."""
    r = max(1, min(int(rank), n - 1))
    U = torch.randn(n, r, dtype=dtype, device=device)
    U.mul_(math.sqrt(0.1) / torch.linalg.vector_norm(U))
    V = torch.randn(n, r, dtype=dtype, device=device)
    V.mul_(math.sqrt(0.1) / torch.linalg.vector_norm(V))
    d = torch.full((n, 1), scale, dtype=dtype, device=device)
    return [U, V, d], [torch.zeros((), dtype=dtype, device=device) for _ in range(3)]


def _balance_UV(U: torch.Tensor, V: torch.Tensor) -> None:
    """Moves ``U`` and ``V`` towards ``U^T U = V^T V`` without changing ``U V^T`` much: rescales them to
    equal Frobenius norms, then a small rotation (second-order expansion) reduces the mismatch."""
    UtU, VtV = U.T @ U, V.T @ V
    trU, trV = UtU.trace(), VtV.trace()
    rho = (trU / trV) ** 0.25
    rho2 = rho * rho
    E = 0.1 * (UtU / rho2 - VtV * rho2) / (trU / rho2 + trV * rho2)
    E2 = 0.5 * E @ E
    U.div_(rho)
    V.mul_(rho)
    U.sub_(U @ (E - E2))
    V.add_(V @ (E + E2))


def lra_precondition(UVd: Sequence[torch.Tensor], g: torch.Tensor) -> torch.Tensor:
    """``P g = diag(d) (I + V U^T) (I + U V^T) diag(d) g`` for a column ``g``."""
    U, V, d = UVd
    x = d * g
    x = x + U @ (V.T @ x)
    x = x + V @ (U.T @ x)
    return d * x


def lra_update(UVd: list[torch.Tensor], Luvd: list[torch.Tensor], v: torch.Tensor, h: torch.Tensor, lr: float,
               betaL: float) -> None:
    """One step of ``Q = (I + U V^T) diag(d)`` towards the minimiser of ``h^T P h + v^T P^{-1} v``.

    After balancing ``U`` and ``V``, with ``a = Q h``, ``b = Q^{-T} v`` (Woodbury identity), ``Ph = Q^T a``,
    ``P^{-1} v = Q^{-1} b``::

        d <- d - (lr / L_d) (Ph * h - v * P^{-1} v) * d            (elementwise)

    then, with equal probability, one of (the other is kept)::

        U <- U - (lr / L_U) (a a^T - b b^T) V (I + V^T U)
        V <- V - (lr / L_V) (I + V U^T) (a a^T - b b^T) U

    each step normalised by a running bound ``L`` of the gradient's Lipschitz constant. These are
    gradient steps on the group of matrices ``(I + U V^T) diag(d)`` (Li, 2024, arXiv:2402.11858).
    """
    U, V, d = UVd
    Lu, Lv, Ld = Luvd
    _balance_UV(U, V)

    Qh = d * h
    Qh = Qh + U @ (V.T @ Qh)
    Ph = d * (Qh + V @ (U.T @ Qh))

    IpVtU = V.T @ U
    IpVtU.diagonal().add_(1)
    # (I + U V^T)^{-1} = I - U (I + V^T U)^{-1} V^T
    invQtv = v / d
    LU, piv = torch.linalg.lu_factor(IpVtU)
    invQtv = invQtv - V @ torch.linalg.lu_solve(LU, piv, U.T @ invQtv, adjoint=True)
    invPv = (invQtv - U @ torch.linalg.lu_solve(LU, piv, V.T @ invQtv)) / d

    Phh, vinvPv = Ph * h, v * invPv
    ell = Phh.abs().amax() + vinvPv.abs().amax()
    update_lipschitz(Ld, ell, betaL)
    d.sub_(lr / Ld * (Phh - vinvPv) * d)

    a, b = Qh, invQtv
    if torch.rand(()) < 0.5:
        atV, btV = a.T @ V, b.T @ V
        ell = (torch.linalg.vector_norm(a) * torch.linalg.vector_norm(atV @ V.T)
               + torch.linalg.vector_norm(b) * torch.linalg.vector_norm(btV @ V.T))
        update_lipschitz(Lu, ell, betaL)
        U.sub_(lr / Lu * (a @ (atV @ IpVtU) - b @ (btV @ IpVtU)))
    else:
        atU, btU = a.T @ U, b.T @ U
        ell = (torch.linalg.vector_norm(a) * torch.linalg.vector_norm(U @ atU.T)
               + torch.linalg.vector_norm(b) * torch.linalg.vector_norm(U @ btU.T))
        update_lipschitz(Lv, ell, betaL)
        V.sub_(lr / Lv * ((a + V @ atU.T) @ atU - (b + V @ btU.T) @ btU))


def _clip_amp(x: torch.Tensor, max_amp: float) -> torch.Tensor:
    if max_amp == float("inf"):
        return x
    amp = torch.sqrt((x * x).mean())
    return x * (max_amp / amp) if amp > max_amp else x


def _clip_norm(x: torch.Tensor, max_norm: float) -> torch.Tensor:
    if max_norm == float("inf"):
        return x
    n = torch.linalg.vector_norm(x)
    return x * (max_norm / n) if n > max_norm else x


def _check_rank(rank: int) -> None:
    if int(rank) < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")


class PSGDLRAWhiten(TensorTransform):
    """PSGD with a low-rank-approximation (LRA) whitening preconditioner (Li, 2015, "Preconditioned
    Stochastic Gradient Descent", arXiv:1512.04202; Li, 2024, "Stochastic Hessian Fitting on Lie Groups",
    arXiv:2402.11858; see also Li's psgd_torch).

    The preconditioner is ``P = Q^T Q`` with ``Q = (I + U V^T) diag(d)``, ``U, V`` of shape
    ``n x r`` (``r = rank``), over all parameters concatenated (``concat_params=True``) or over each
    parameter separately. With probability ``update_probability`` per step, a random ``v ~ N(0, I)`` and
    ``h = g + damping * v`` (``g`` the incoming update) make one step of :func:`lra_update` towards the
    minimiser of ``E[h^T P h + v^T P^{-1} v]``, i.e. ``P = (E[g g^T])^{-1/2}`` (``v`` independent of ``g``).
    The output is ``P u`` for the update ``u`` after ``inner``, scaled down to a root-mean-square of
    ``grad_clip_max_amp`` if larger. Initially ``d = init_scale`` or ``(mean g^4)^(-1/8)`` from the first
    update, and ``U``, ``V`` small random matrices.

    Args:
        rank: rank of the low-rank part (at most ``n - 1``).
        init_scale: initial scale of ``Q`` (None: from the first update).
        lr_preconditioner: step size of the preconditioner fit.
        betaL: decay of the Lipschitz-constant estimates.
        damping: scale of the noise added to the update before fitting.
        grad_clip_max_amp: largest root-mean-square of the preconditioned update.
        update_probability: probability of updating the preconditioner on a step.
        concat_params: one preconditioner for all parameters (True) or one per parameter.
        inner: module(s) whose output is preconditioned (the preconditioner is fitted to the input).
    """

    inplace = False

    def __init__(self, rank: int = 10, init_scale: float | None = None, lr_preconditioner=0.1, betaL=0.9, damping=1e-9,
                 grad_clip_max_amp=float("inf"), update_probability=1.0, concat_params: bool = True,
                 inner: Chainable | None = None):
        check_common(lr_preconditioner, betaL, update_probability)
        _check_rank(rank)
        super().__init__(dict(rank=int(rank), init_scale=init_scale, lr_preconditioner=lr_preconditioner, betaL=betaL,
                              damping=damping, grad_clip_max_amp=grad_clip_max_amp,
                              update_probability=update_probability),
                         concat_params=concat_params, inner=inner)

    @torch.no_grad()
    def multi_tensor_update(self, tensors, params, grads, loss, states, settings) -> None:
        for t, st, s in zip(tensors, states, settings):
            if "UVd" not in st:
                scale = s["init_scale"] if s["init_scale"] is not None else whiten_init_scale(t)
                st["UVd"], st["Luvd"] = lra_init(t.numel(), s["rank"], scale, t.dtype, t.device)
        for t, st, s in zip(tensors, states, settings):
            if torch.rand(()) < s["update_probability"]:
                g = t.reshape(-1, 1)
                v = torch.randn_like(g)
                lra_update(st["UVd"], st["Luvd"], v, g + s["damping"] * v, s["lr_preconditioner"], s["betaL"])

    @torch.no_grad()
    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings) -> list[torch.Tensor]:
        return [_clip_amp(lra_precondition(st["UVd"], t.reshape(-1, 1)), s["grad_clip_max_amp"]).view_as(t)
                for t, st, s in zip(tensors, states, settings)]


class PSGDLRANewton(Transform):
    """PSGD with a low-rank-approximation (LRA) Newton-type preconditioner (Li, 2015, "Preconditioned
    Stochastic Gradient Descent", arXiv:1512.04202; Li, 2024, "Stochastic Hessian Fitting on Lie Groups",
    arXiv:2402.11858; see also Li's psgd_torch).

    ``P = Q^T Q`` with ``Q = (I + U V^T) diag(d)`` over all parameters as one vector (``U, V`` of shape
    ``n x r``). With probability ``update_probability`` per step, a random ``v`` (from ``distribution``)
    and the Hessian-vector product ``h = H v + damping * N(0, I)`` at the current point make one step of
    :func:`lra_update` towards the minimiser of ``E[h^T P h + v^T P^{-1} v]``, i.e. ``P = |H|^{-1}``
    restricted to this family. The output is ``P u`` for the update ``u`` after ``inner``, scaled to norm
    ``grad_clip_max_norm`` if longer. Initially ``d = init_scale`` or ``(mean v^2)^(1/4) (mean h^4)^(-1/8)``
    from the first pair. Needs a closure.

    Args:
        rank: rank of the low-rank part (at most ``n - 1``).
        init_scale: initial scale of ``Q`` (None: from the first pair).
        lr_preconditioner: step size of the preconditioner fit.
        betaL: decay of the Lipschitz-constant estimates.
        damping: standard deviation of the noise added to the Hessian-vector product.
        grad_clip_max_norm: largest norm of the preconditioned update.
        update_probability: probability of updating the preconditioner on a step.
        hvp_method: ``"autograd"`` / ``"batched_autograd"`` or finite differences ``"fd_forward"`` / ``"fd_central"``.
        h: finite-difference step.
        distribution: distribution of ``v``.
        inner: module(s) whose output is preconditioned.
    """

    def __init__(self, rank: int = 10, init_scale: float | None = None, lr_preconditioner=0.1, betaL=0.9, damping=1e-9,
                 grad_clip_max_norm=float("inf"), update_probability=1.0, hvp_method: str = "autograd", h: float = 1e-3,
                 distribution: str = "normal", inner: Chainable | None = None):
        check_common(lr_preconditioner, betaL, update_probability)
        _check_rank(rank)
        check_hvp(hvp_method, distribution)
        super().__init__(dict(rank=int(rank), init_scale=init_scale, lr_preconditioner=lr_preconditioner, betaL=betaL,
                              damping=damping, grad_clip_max_norm=grad_clip_max_norm, update_probability=update_probability,
                              hvp_method=hvp_method, h=h, distribution=distribution), inner=inner)

    @torch.no_grad()
    def update_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        s = settings[0]
        params = objective.params
        gs = self.global_state
        first = "UVd" not in gs
        if first:
            n = sum(p.numel() for p in params)
            # d is set from the first pair below when init_scale is None
            gs["UVd"], gs["Luvd"] = lra_init(n, s["rank"], 1.0 if s["init_scale"] is None else s["init_scale"],
                                             params[0].dtype, params[0].device)
        if not torch.rand(()) < s["update_probability"] and not first:
            return
        vs = random_vectors(s["distribution"], params, None)
        hs, _ = objective.hessian_vector_product(vs, None, True, s["hvp_method"], s["h"])
        v, h = tensors_to_vec(vs).unsqueeze(1), tensors_to_vec(hs).unsqueeze(1)
        if first and s["init_scale"] is None:
            gs["UVd"][2].fill_(newton_init_scale(v, h))
        h = h + s["damping"] * torch.randn_like(h)
        lra_update(gs["UVd"], gs["Luvd"], v, h, s["lr_preconditioner"], s["betaL"])

    @torch.no_grad()
    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        s = settings[0]
        u = objective.peek_updates()
        out = lra_precondition(self.global_state["UVd"], tensors_to_vec(u).unsqueeze(1)).squeeze(1)
        out = _clip_norm(out, s["grad_clip_max_norm"])
        objective.set_updates(vec_to_tensors(out, objective.params), owned=True)
        return objective
