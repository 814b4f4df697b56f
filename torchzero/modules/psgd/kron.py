"""PSGD with Kronecker-factored preconditioners: PSGDKronWhiten and PSGDKronNewton."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import TensorTransform, Transform
from ..curvature.hutchinson import random_vectors
from .helpers import (
    DQ,
    check_common,
    check_dQ,
    check_hvp,
    newton_init_scale,
    procrustes_step,
    spd_norm_lower_bound,
    update_lipschitz,
    whiten_init_scale,
)

# ----------------------------------------------------------------------------- tensor algebra
# A tensor of shape (n_1, ..., n_k) (size-1 dimensions squeezed out) is preconditioned by
# Q = kron(Q_1, ..., Q_k); each factor Q_i is an n_i x n_i matrix or, for large or skewed
# dimensions, a diagonal stored as a vector. A 0-d tensor has one 0-d factor.


def kron_init(shape: Sequence[int], scale: float, max_dim: float, max_skew: float, dtype: torch.dtype,
              device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Factors with ``Q = scale * I`` (each factor ``scale^(1/k) I``) and zero Lipschitz estimates."""
    if len(shape) == 0:
        return [torch.full((), scale, dtype=dtype, device=device)], [torch.zeros((), dtype=dtype, device=device)]
    numel = math.prod(shape)
    s = scale ** (1 / len(shape))
    Q, L = [], []
    for n in shape:
        if n <= 1 or n > max_dim or n * n > max_skew * numel:
            Q.append(torch.full((n,), s, dtype=dtype, device=device))
        else:
            Q.append(torch.eye(n, dtype=dtype, device=device).mul_(s))
        L.append(torch.zeros((), dtype=dtype, device=device))
    return Q, L


def mode_mul(X: torch.Tensor, q: torch.Tensor, i: int, transpose: bool = False) -> torch.Tensor:
    """Multiplies mode ``i`` of ``X`` by the factor ``q`` (or its transpose)."""
    if q.dim() == 0:
        return X * q
    if q.dim() == 1:
        shape = [1] * X.dim()
        shape[i] = -1
        return X * q.view(shape)
    M = q.T if transpose else q
    return torch.movedim(torch.tensordot(M, X, dims=([1], [i])), 0, i)


def kron_apply(Q: Sequence[torch.Tensor], X: torch.Tensor, transpose: bool = False) -> torch.Tensor:
    """``Q X`` (or ``Q^T X``) with ``Q = kron(Q_1, ..., Q_k)``."""
    for i, q in enumerate(Q):
        X = mode_mul(X, q, i, transpose)
    return X


def kron_precondition(Q: Sequence[torch.Tensor], X: torch.Tensor, dQ: str = "Q0.5EQ1.5") -> torch.Tensor:
    """``P X = Q^T Q X`` (the factors store ``P`` itself for ``dQ="QUAD4P"``)."""
    if dQ == "QUAD4P":
        return kron_apply(Q, X)
    return kron_apply(Q, kron_apply(Q, X), transpose=True)


def mode_gram(X: torch.Tensor, like: torch.Tensor, i: int) -> torch.Tensor:
    """``X_(i) X_(i)^T``: ``X`` contracted with itself over every mode but ``i`` (its diagonal if the
    factor ``like`` is diagonal)."""
    if like.dim() == 0:
        return X * X
    Xi = torch.movedim(X, i, 0).reshape(X.shape[i], -1)
    if like.dim() == 1:
        return (Xi * Xi).sum(1)
    return Xi @ Xi.T


def balance(Q: Sequence[torch.Tensor]) -> None:
    """Rescales the factors to a common largest magnitude (their product is unchanged), which keeps
    them away from over- and underflow."""
    if len(Q) < 2:
        return
    norms = [q.abs().amax() for q in Q]
    gmean = torch.stack(norms).prod() ** (1 / len(Q))
    for q, n in zip(Q, norms):
        q.mul_(gmean / n)


def _inv_gram(q: torch.Tensor) -> torch.Tensor:
    """``(q q^T)^{-1}`` (``1 / q^2`` for a diagonal factor), ``q`` upper triangular."""
    if q.dim() < 2:
        return 1 / (q * q)
    qinv = torch.linalg.solve_triangular(q, torch.eye(q.shape[0], dtype=q.dtype, device=q.device), upper=True)
    return qinv.T @ qinv


def _solve_right_upper(B: torch.Tensor, q: torch.Tensor, i: int) -> torch.Tensor:
    """Mode ``i`` of ``B`` multiplied by ``q^{-1}`` from the left transposed, i.e. ``q^{-T}`` applied to mode ``i``."""
    if q.dim() < 2:
        shape = [1] * B.dim()
        if q.dim() == 1:
            shape[i] = -1
        return B / q.view(shape) if q.dim() == 1 else B / q
    Bi = torch.movedim(B, i, -1)
    lead = Bi.shape[:-1]
    sol = torch.linalg.solve_triangular(q, Bi.reshape(-1, q.shape[0]), upper=True, left=False)
    return torch.movedim(sol.reshape(*lead, q.shape[0]), -1, i)


def kron_update(Q: list[torch.Tensor], L: list[torch.Tensor], h: torch.Tensor, v: torch.Tensor | None, dQ: str,
                lr: float, betaL: float) -> None:
    """One step of ``Q`` towards the minimiser of ``h^T P h + v^T P^{-1} v`` (``v`` integrated out when None,
    i.e. ``E[v v^T] = I``) on the Lie group of the chosen geometry ``dQ``.

    With ``E_i = G_i - V_i`` the gradient on factor ``i`` (``G_i`` the mode-``i`` Gram matrix of ``P h``,
    ``V_i`` that of ``v``, or ``numel/n_i I`` when ``v`` is integrated out):

    * ``Q0.5EQ1.5``: ``Q_i <- Q_i - (lr/L_i) E_i Q_i``, then a Procrustes step keeps ``Q_i`` symmetric;
    * ``QEQ``: ``Q_i <- Q_i - (lr/L_i) Q_i E_i``;
    * ``QEP``: ``Q_i <- Q_i - (lr/L_i) Q_i E_i P_i`` with ``P_i = Q_i^T Q_i``;
    * ``EQ``: ``Q_i <- Q_i - (lr/L_i) triu(A_i - B_i) Q_i`` with ``A = Q h``, ``B = Q^{-T} v`` (``Q_i`` upper
      triangular; ``v`` is sampled when integrated out);
    * ``QUAD``: ``Q_i <- (I - lr/(2L_i) E_i) Q_i (I - lr/(2L_i) E_i)``, kept symmetric;
    * ``QUAD4P``: the same quadratic form applied to ``P_i`` itself (the factors then store ``P``).
    """
    numel = h.numel()
    if dQ in ("EQ",):
        A = kron_apply(Q, h)
        if v is None:
            # E[B B^T] with B = Q^{-T} v, v ~ N(0, I): mode i sees (Q_i Q_i^T)^{-1} times the traces of the others
            invs = [_inv_gram(q) for q in Q]
            traces = [inv.sum() if inv.dim() < 2 else inv.trace() for inv in invs]
            t2s = []
            for i in range(len(Q)):
                others = [t for j, t in enumerate(traces) if j != i]
                t2s.append(invs[i] * (torch.stack(others).prod() if others else 1))
        else:
            B = v
            for i, q in enumerate(Q):
                B = _solve_right_upper(B, q, i)
            t2s = [mode_gram(B, q, i) for i, q in enumerate(Q)]
        for i, q in enumerate(Q):
            _factor_step(q, L[i], mode_gram(A, q, i), t2s[i], None, lr, betaL, lambda E, q=q: torch.triu(E) @ q, sym=False)
        return
    if dQ == "QUAD4P":
        Ph = kron_apply(Q, h)
    else:
        Ph = kron_precondition(Q, h)
    for i, q in enumerate(Q):
        t1 = mode_gram(Ph, q, i)
        if v is None:
            c = numel / (q.shape[0] if q.dim() > 0 else 1)
            t2 = torch.full_like(t1, c) if q.dim() < 2 else torch.eye(q.shape[0], dtype=q.dtype, device=q.device) * c
        else:
            c, t2 = None, mode_gram(v, q, i)
        if dQ == "Q0.5EQ1.5":
            _factor_step(q, L[i], t1, t2, c, lr, betaL, lambda E, q=q: E @ q, sym=True)
        elif dQ == "QEQ":
            _factor_step(q, L[i], t1, t2, c, lr, betaL, lambda E, q=q: q @ E, sym=False)
        elif dQ == "QEP":
            _qep_step(q, L[i], t1, t2, lr, betaL)
        else:  # QUAD (on Q, half steps), QUAD4P (on P, full steps)
            _quad_step(q, L[i], t1, t2, c, lr if dQ == "QUAD4P" else lr / 2, betaL)


def _ell(t1: torch.Tensor, t2: torch.Tensor, c: float | None) -> torch.Tensor:
    """A lower bound of ``||t1 + t2||`` (``t2 = c I`` when ``c`` is given)."""
    if t1.dim() < 2:
        return (t1 + t2).amax()
    if c is not None:
        return spd_norm_lower_bound(t1) + c
    return spd_norm_lower_bound(t1 + t2)


def _factor_step(q: torch.Tensor, L: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor, c: float | None, lr: float,
                 betaL: float, matrix_dir, sym: bool) -> None:
    ell = _ell(t1, t2, c)
    update_lipschitz(L, ell, betaL)
    if q.dim() < 2:
        q.sub_(lr / L * (t1 - t2) * q)
        return
    q.sub_(lr / L * matrix_dir(t1 - t2))
    if sym:
        procrustes_step(q)


def _qep_step(q: torch.Tensor, L: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor, lr: float, betaL: float) -> None:
    """``Q_i <- Q_i - (lr/L_i) Q_i E_i P_i``, ``L_i`` bounding ``||Q_i (G_i + V_i) Q_i^T||``."""
    if q.dim() < 2:
        ell = ((t1 + t2) * q * q).amax()
        update_lipschitz(L, ell, betaL)
        q.sub_(lr / L * q * (t1 - t2) * q * q)
        return
    ell = spd_norm_lower_bound(q @ (t1 + t2) @ q.T)
    update_lipschitz(L, ell, betaL)
    q.sub_(lr / L * (q @ (t1 - t2) @ (q.T @ q)))


def _quad_step(q: torch.Tensor, L: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor, c: float | None, lr: float,
               betaL: float) -> None:
    ell = _ell(t1, t2, c)
    update_lipschitz(L, ell, betaL)
    if q.dim() < 2:
        gain = 1 - lr / L * (t1 - t2)
        q.mul_(gain * gain)
        return
    E = (t1 - t2) * (lr / L)
    p = q - E @ q
    p = p - p @ E
    q.copy_((p + p.T) / 2)


def clip_amplitude(tensors: list[torch.Tensor], max_amp: float) -> None:
    """Scales ``tensors`` in place so that their root-mean-square over all entries is at most ``max_amp``."""
    if max_amp == float("inf"):
        return
    n = sum(t.numel() for t in tensors)
    amp = torch.sqrt(sum((t * t).sum() for t in tensors) / n)
    if amp > max_amp:
        torch._foreach_mul_(tensors, max_amp / amp)


def _check_kron(max_dim: int, max_skew: float, balance_probability: float) -> None:
    if max_dim < 0:
        raise ValueError(f"max_dim must be >= 0, got {max_dim}")
    if max_skew < 0:
        raise ValueError(f"max_skew must be >= 0, got {max_skew}")
    if not 0 <= balance_probability <= 1:
        raise ValueError(f"balance_probability must be in [0, 1], got {balance_probability}")


def _kron_step_state(state: dict[str, Any], h: torch.Tensor, v: torch.Tensor | None, s: Mapping[str, Any],
                     noise_on: torch.Tensor) -> None:
    """Damping noise, one preconditioner update and, with probability ``balance_probability``, balancing."""
    h = h + s["damping"] * torch.randn_like(noise_on)
    kron_update(state["Q"], state["L"], h, v, s["dQ"], s["lr_preconditioner"], s["betaL"])
    if s["dQ"] != "QEP" and torch.rand(()) < s["balance_probability"]:
        balance(state["Q"])


# ----------------------------------------------------------------------------- modules


class PSGDKronWhiten(TensorTransform):
    """PSGD with a Kronecker-factored whitening preconditioner (Li, 2015, "Preconditioned Stochastic
    Gradient Descent", arXiv:1512.04202; Li, 2024, "Stochastic Hessian Fitting on Lie Groups",
    arXiv:2402.11858; see also Li's psgd_torch).

    Each tensor ``G`` (the incoming update, size-1 dimensions dropped) of shape ``(n_1, ..., n_k)`` has
    a preconditioner ``P = Q^T Q`` with ``Q = kron(Q_1, ..., Q_k)``; a dimension with ``n_i > max_dim``
    or ``n_i^2 > max_skew * numel`` gets a diagonal factor. ``P`` is fitted to minimise
    ``E[g^T P g] + tr(P^{-1})``, whose solution is ``P = (E[g g^T])^{-1/2}``: with probability
    ``update_probability`` per step, with ``g = G + damping * N(0, I)``::

        Pg = P g
        E_i = (Pg)_(i) (Pg)_(i)^T - (numel / n_i) I       (mode-i Gram matrices)
        L_i <- max(betaL L_i + (1 - betaL) ell_i, ell_i),   ell_i >= ||(Pg)_(i) (Pg)_(i)^T + (numel / n_i) I||
        Q_i <- Q_i - (lr_preconditioner / L_i) E_i Q_i      (then a Procrustes step; dQ="Q0.5EQ1.5")

    followed, with probability ``balance_probability``, by rescaling the factors to a common magnitude.
    The output is ``P u`` with ``u`` the update after ``inner``, scaled down to a root-mean-square of
    ``grad_clip_max_amp`` if larger. Initially ``Q = init_scale * I``, or ``(mean g^4)^(-1/8) I`` from the
    first update of each tensor when ``init_scale`` is None. Other geometries ``dQ`` are described in
    :func:`kron_update`.

    Args:
        max_dim: dimensions larger than this get a diagonal factor.
        max_skew: a dimension with ``n^2 > max_skew * numel`` gets a diagonal factor.
        init_scale: initial scale of ``Q`` (None: from the first update).
        lr_preconditioner: step size of the preconditioner fit.
        betaL: decay of the Lipschitz-constant estimate.
        damping: standard deviation of the noise added to the update before fitting.
        grad_clip_max_amp: largest root-mean-square of the preconditioned update.
        update_probability: probability of updating the preconditioner on a step.
        dQ: geometry of the preconditioner update.
        balance_probability: probability of balancing the factors on an update.
        inner: module(s) whose output is preconditioned (the preconditioner is fitted to the input).
    """

    inplace = False

    def __init__(self, max_dim: int = 10_000, max_skew: float = 1.0, init_scale: float | None = None,
                 lr_preconditioner: float = 0.1, betaL: float = 0.9, damping: float = 1e-9,
                 grad_clip_max_amp: float = float("inf"), update_probability: float = 1.0, dQ: DQ = "Q0.5EQ1.5",
                 balance_probability: float = 0.01, inner: Chainable | None = None):
        check_common(lr_preconditioner, betaL, update_probability)
        _check_kron(max_dim, max_skew, balance_probability)
        super().__init__(dict(max_dim=max_dim, max_skew=max_skew, init_scale=init_scale, lr_preconditioner=lr_preconditioner,
                              betaL=betaL, damping=damping, grad_clip_max_amp=grad_clip_max_amp,
                              update_probability=update_probability, dQ=check_dQ(dQ), balance_probability=balance_probability),
                         inner=inner)

    @torch.no_grad()
    def multi_tensor_update(self, tensors, params, grads, loss, states, settings) -> None:
        for t, st, s in zip(tensors, states, settings):
            if "Q" not in st:
                G = t.squeeze()
                scale = s["init_scale"] if s["init_scale"] is not None else whiten_init_scale(G)
                if s["dQ"] == "QUAD4P":  # the factors store P = Q^2
                    scale = scale ** 2
                st["Q"], st["L"] = kron_init(G.shape, scale, s["max_dim"], s["max_skew"], G.dtype, G.device)
        if not torch.rand(()) < settings[0]["update_probability"]:
            return
        for t, st, s in zip(tensors, states, settings):
            G = t.squeeze()
            _kron_step_state(st, G, None, s, G)

    @torch.no_grad()
    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings) -> list[torch.Tensor]:
        out = [kron_precondition(st["Q"], t.squeeze(), s["dQ"]).view_as(t) for t, st, s in zip(tensors, states, settings)]
        clip_amplitude(out, settings[0]["grad_clip_max_amp"])
        return out


class PSGDKronNewton(Transform):
    """PSGD with a Kronecker-factored Newton-type preconditioner (Li, 2015, "Preconditioned Stochastic
    Gradient Descent", arXiv:1512.04202; Li, 2024, "Stochastic Hessian Fitting on Lie Groups",
    arXiv:2402.11858; see also Li's psgd_torch).

    As :class:`PSGDKronWhiten`, but ``P`` is fitted to pairs ``(v, h)`` of a random vector ``v`` (drawn
    from ``distribution``) and the Hessian-vector product ``h = H v + damping * N(0, I)`` at the current
    parameters, minimising ``E[h^T P h + v^T P^{-1} v]``; the solution is ``P = |H|^{-1}``, so the update
    ``P u`` is a (stochastic) Newton step. On a preconditioner update, per tensor::

        Ph = P h
        E_i = (Ph)_(i) (Ph)_(i)^T - v_(i) v_(i)^T
        L_i <- max(betaL L_i + (1 - betaL) ell_i, ell_i)
        Q_i <- Q_i - (lr_preconditioner / L_i) E_i Q_i     (then a Procrustes step; dQ="Q0.5EQ1.5")

    Initially ``Q = init_scale * I``, or ``(mean v^4 / mean h^4)^(1/8) I`` from the first pair of each
    tensor. Needs a closure (Hessian-vector products); the products are taken at the current parameters,
    so this is usually the first module.

    Args:
        max_dim: dimensions larger than this get a diagonal factor.
        max_skew: a dimension with ``n^2 > max_skew * numel`` gets a diagonal factor.
        init_scale: initial scale of ``Q`` (None: from the first pair).
        lr_preconditioner: step size of the preconditioner fit.
        betaL: decay of the Lipschitz-constant estimate.
        damping: standard deviation of the noise added to the Hessian-vector product.
        grad_clip_max_amp: largest root-mean-square of the preconditioned update.
        update_probability: probability of updating the preconditioner on a step.
        dQ: geometry of the preconditioner update.
        balance_probability: probability of balancing the factors on an update.
        hvp_method: ``"autograd"`` / ``"batched_autograd"`` or finite differences ``"fd_forward"`` / ``"fd_central"``.
        h: finite-difference step.
        distribution: distribution of ``v``.
        inner: module(s) whose output is preconditioned.
    """

    def __init__(self, max_dim: int = 10_000, max_skew: float = 1.0, init_scale: float | None = None,
                 lr_preconditioner: float = 0.1, betaL: float = 0.9, damping: float = 1e-9,
                 grad_clip_max_amp: float = float("inf"), update_probability: float = 1.0, dQ: DQ = "Q0.5EQ1.5",
                 balance_probability: float = 0.01, hvp_method: str = "autograd", h: float = 1e-3,
                 distribution: str = "normal", inner: Chainable | None = None):
        check_common(lr_preconditioner, betaL, update_probability)
        _check_kron(max_dim, max_skew, balance_probability)
        check_hvp(hvp_method, distribution)
        super().__init__(dict(max_dim=max_dim, max_skew=max_skew, init_scale=init_scale, lr_preconditioner=lr_preconditioner,
                              betaL=betaL, damping=damping, grad_clip_max_amp=grad_clip_max_amp,
                              update_probability=update_probability, dQ=check_dQ(dQ), balance_probability=balance_probability,
                              hvp_method=hvp_method, h=h, distribution=distribution), inner=inner)

    @torch.no_grad()
    def update_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        s0 = settings[0]
        first = "Q" not in states[0]
        if not torch.rand(()) < s0["update_probability"] and not first:
            return
        params = objective.params
        vs = random_vectors(s0["distribution"], params, None)
        hs, _ = objective.hessian_vector_product(vs, None, True, s0["hvp_method"], s0["h"])
        for v, hv, st, s in zip(vs, hs, states, settings):
            V, Hv = v.squeeze(), hv.squeeze()
            if "Q" not in st:
                scale = s["init_scale"] if s["init_scale"] is not None else newton_init_scale(V, Hv)
                if s["dQ"] == "QUAD4P":
                    scale = scale ** 2
                st["Q"], st["L"] = kron_init(V.shape, scale, s["max_dim"], s["max_skew"], V.dtype, V.device)
            _kron_step_state(st, Hv, V, s, Hv)

    @torch.no_grad()
    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        u = objective.peek_updates()
        out = [kron_precondition(st["Q"], t.squeeze(), s["dQ"]).view_as(t) for t, st, s in zip(u, states, settings)]
        clip_amplitude(out, settings[0]["grad_clip_max_amp"])
        objective.set_updates(out, owned=True)
        return objective
