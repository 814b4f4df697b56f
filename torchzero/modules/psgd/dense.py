"""PSGD with a dense preconditioner over all parameters: PSGDDenseNewton."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import Transform
from ...utils.params import tensors_to_vec, vec_to_tensors
from ..curvature.hutchinson import random_vectors
from .helpers import (
    DQ,
    check_common,
    check_dQ,
    check_hvp,
    newton_init_scale,
    procrustes_step,
    update_lipschitz,
)


def dense_update(Q: torch.Tensor, L: torch.Tensor, v: torch.Tensor, h: torch.Tensor, dQ: str, lr: float, betaL: float) -> None:
    """One step of the dense ``Q`` (``P = Q^T Q``) towards the minimiser of ``h^T P h + v^T P^{-1} v``,
    ``v`` and ``h`` column vectors, in the geometry ``dQ``.

    With ``a = P h`` (``Q h`` for ``EQ``, ``Q`` upper triangular, and ``b = Q^{-T} v``; ``b = v`` otherwise),
    ``E = a a^T - b b^T`` and ``L`` a running bound of ``||a a^T + b b^T||``:

    * ``Q0.5EQ1.5``: ``Q <- Q - (lr/L) E Q`` and a Procrustes step (``Q`` stays symmetric);
    * ``QEQ``: ``Q <- Q - (lr/L) Q E``;  ``QEP``: ``Q <- Q - (lr/L) Q E P``;
    * ``EQ``: ``Q <- Q - (lr/L) triu(E) Q``;
    * ``QUAD``: ``Q <- (I - lr/(2L) E) Q (I - lr/(2L) E)`` (symmetrised);
    * ``QUAD4P``: ``Q`` stores ``P`` itself, ``P <- (I - lr/L E) P (I - lr/L E)`` with ``a = P h``.
    """
    if dQ == "EQ":
        a = Q @ h
        b = torch.linalg.solve_triangular(Q.T, v, upper=False)
    elif dQ == "QUAD4P":
        a, b = Q @ h, v
    else:
        a, b = Q.T @ (Q @ h), v
    if dQ == "QEP":
        Qa, Qb = Q @ a, Q @ b
        ell = (Qa * Qa).sum() + (Qb * Qb).sum()
    else:
        ell = (a * a).sum() + (b * b).sum()
    update_lipschitz(L, ell, betaL)
    mu = lr / L
    if dQ == "Q0.5EQ1.5":
        Q.sub_(mu * (a @ (a.T @ Q) - b @ (b.T @ Q)))
        procrustes_step(Q)
    elif dQ == "QEQ":
        Q.sub_(mu * ((Q @ a) @ a.T - (Q @ b) @ b.T))
    elif dQ == "QEP":
        P = Q.T @ Q
        Q.sub_(mu * (Qa @ (a.T @ P) - Qb @ (b.T @ P)))
    elif dQ == "EQ":
        Q.sub_(mu * (torch.triu(a @ a.T - b @ b.T) @ Q))
    else:
        m = mu / 2 if dQ == "QUAD" else mu
        E = a @ a.T - b @ b.T
        X = Q - m * (E @ Q)
        X = X - m * (X @ E)
        Q.copy_((X + X.T) / 2)


def dense_precondition(Q: torch.Tensor, g: torch.Tensor, dQ: str) -> torch.Tensor:
    """``P g`` (``Q`` stores ``P`` itself for ``QUAD4P``)."""
    if dQ == "QUAD4P":
        return Q @ g
    return Q.T @ (Q @ g)


def clip_norm(x: torch.Tensor, max_norm: float) -> torch.Tensor:
    if max_norm == float("inf"):
        return x
    n = torch.linalg.vector_norm(x)
    return x * (max_norm / n) if n > max_norm else x


class PSGDDenseNewton(Transform):
    """PSGD with a dense Newton-type preconditioner over all parameters (Li, 2015, "Preconditioned
    Stochastic Gradient Descent", arXiv:1512.04202; Li, 2024, "Stochastic Hessian Fitting on Lie Groups",
    arXiv:2402.11858; see also Li's psgd_torch).

    All parameters are one vector of size ``n`` with preconditioner ``P = Q^T Q`` (``n x n``). With
    probability ``update_probability`` per step, a random ``v`` (from ``distribution``) and the
    Hessian-vector product ``h = H v + damping * N(0, I)`` at the current point are drawn and ``Q`` makes one
    step towards the minimiser of ``E[h^T P h + v^T P^{-1} v]``, i.e. ``P = |H|^{-1}``. In the default
    geometry ``dQ="Q0.5EQ1.5"``::

        a = P h
        L <- max(betaL L + (1 - betaL) ell, ell),      ell = |a|^2 + |v|^2 >= ||a a^T + v v^T||
        Q <- Q - (lr_preconditioner / L) (a a^T - v v^T) Q, followed by a Procrustes step (Q symmetric)

    (other geometries: :func:`dense_update`). The output is ``P u`` for the update ``u`` after ``inner``,
    scaled to norm ``grad_clip_max_norm`` if longer. Initially ``Q = init_scale * I``, or
    ``(mean v^2)^(1/4) (mean h^4)^(-1/8) I`` from the first pair. Needs a closure; uses ``O(n^2)`` memory.

    Args:
        init_scale: initial scale of ``Q`` (None: from the first pair).
        lr_preconditioner: step size of the preconditioner fit.
        betaL: decay of the Lipschitz-constant estimate.
        damping: standard deviation of the noise added to the Hessian-vector product.
        grad_clip_max_norm: largest norm of the preconditioned update.
        update_probability: probability of updating the preconditioner on a step.
        dQ: geometry of the preconditioner update.
        hvp_method: ``"autograd"`` / ``"batched_autograd"`` or finite differences ``"fd_forward"`` / ``"fd_central"``.
        h: finite-difference step.
        distribution: distribution of ``v``.
        inner: module(s) whose output is preconditioned.
    """

    def __init__(self, init_scale: float | None = None, lr_preconditioner=0.1, betaL=0.9, damping=1e-9,
                 grad_clip_max_norm=float("inf"), update_probability=1.0, dQ: DQ = "Q0.5EQ1.5",
                 hvp_method: str = "autograd", h: float = 1e-3, distribution: str = "normal",
                 inner: Chainable | None = None):
        check_common(lr_preconditioner, betaL, update_probability)
        check_hvp(hvp_method, distribution)
        super().__init__(dict(init_scale=init_scale, lr_preconditioner=lr_preconditioner, betaL=betaL, damping=damping,
                              grad_clip_max_norm=grad_clip_max_norm, update_probability=update_probability,
                              dQ=check_dQ(dQ), hvp_method=hvp_method, h=h, distribution=distribution), inner=inner)

    @torch.no_grad()
    def update_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        s = settings[0]
        first = "Q" not in self.global_state
        if not torch.rand(()) < s["update_probability"] and not first:
            return
        params = objective.params
        vs = random_vectors(s["distribution"], params, None)
        hs, _ = objective.hessian_vector_product(vs, None, True, s["hvp_method"], s["h"])
        v, h = tensors_to_vec(vs).unsqueeze(1), tensors_to_vec(hs).unsqueeze(1)
        if first:
            scale = s["init_scale"] if s["init_scale"] is not None else newton_init_scale(v, h)
            if s["dQ"] == "QUAD4P":
                scale = scale ** 2
            self.global_state["Q"] = torch.eye(v.shape[0], dtype=v.dtype, device=v.device).mul_(scale)
            self.global_state["L"] = torch.zeros((), dtype=v.dtype, device=v.device)
        h = h + s["damping"] * torch.randn_like(h)
        dense_update(self.global_state["Q"], self.global_state["L"], v, h, s["dQ"], s["lr_preconditioner"], s["betaL"])

    @torch.no_grad()
    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        s = settings[0]
        u = objective.peek_updates()
        out = dense_precondition(self.global_state["Q"], tensors_to_vec(u).unsqueeze(1), s["dQ"]).squeeze(1)
        out = clip_norm(out, s["grad_clip_max_norm"])
        objective.set_updates(vec_to_tensors(out, objective.params), owned=True)
        return objective
