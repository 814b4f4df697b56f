"""Newton's method with a randomized Nystrom approximation of the Hessian."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import Transform
from ...utils.params import tensors_to_vec, vec_to_tensors
from ..matrix_adaptive._linalg import orthogonalize
from ._krylov import cg
from ._sketch import hessian_times

OrthoMethod = Literal["newtonschulz", "ns5", "polar_express", "svd", "qr", "eigh"]
HVPMethod = Literal["batched_autograd", "autograd", "fd_forward", "fd_central"]


def nystrom(Y: torch.Tensor, Omega: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenpairs ``(L, U)`` of the Nystrom approximation ``Y (Omega^T Y)^+ Y^T`` of ``H`` from
    ``Y = H Omega`` (Tropp, Yurtsever, Udell & Cevher 2017, stabilised by a shift ``nu``):
    ``Y_nu = Y + nu Omega``, ``C = chol(Omega^T Y_nu)``, ``B = Y_nu C^-T = U S V^T``,
    ``L = max(S^2 - nu, 0)``. If ``Omega^T Y_nu`` is not positive definite (an indefinite
    Hessian) its eigendecomposition is used instead, keeping the positive part."""
    nu = torch.finfo(Y.dtype).eps * Y.shape[0] ** 0.5 * torch.linalg.matrix_norm(Y, 2)
    Ynu = Y + nu * Omega
    M = Omega.T @ Ynu
    M = (M + M.T) / 2
    C, info = torch.linalg.cholesky_ex(M)
    if info.item() == 0:
        B = torch.linalg.solve_triangular(C, Ynu.T, upper=False).T
    else:
        D, V = torch.linalg.eigh(M)
        keep = D > torch.finfo(D.dtype).eps * D.abs().max().clamp_min(torch.finfo(D.dtype).tiny)
        B = Ynu @ (V[:, keep] / D[keep].sqrt())
    U, S, _ = torch.linalg.svd(B, full_matrices=False)
    L = (S ** 2 - nu).clamp_min(0)
    return L, U


def _sketch(module: Transform, objective: Objective, s: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    params = objective.params
    ref = params[0]
    n = sum(p.numel() for p in params)
    r = min(int(s["rank"]), n)
    gen = module.get_generator(ref.device, s["seed"])
    Omega = torch.randn(n, r, generator=gen, dtype=ref.dtype, device=ref.device)
    Omega = orthogonalize(Omega, s["orthogonalize_method"]).to(ref.dtype)
    Y = hessian_times(objective, Omega, s["hvp_method"], s["h"])
    return nystrom(Y, Omega)


class NystromSketchAndSolve(Transform):
    """Newton's method with a rank-``r`` randomized Nystrom approximation of the Hessian.

    Every ``update_freq`` steps ``r`` Hessian-vector products ``Y = H Omega`` with a random
    orthonormalised test matrix ``Omega`` give the Nystrom approximation
    ``H ~ U diag(L) U^T = Y (Omega^T Y)^+ Y^T`` (see :func:`nystrom`). The eigenvalues are then
    filtered (``eigv_tol``: drop ``L_i < eigv_tol max L``; ``truncate``: keep the largest) and shifted
    (``L + damping + rdamping max L``). The update solves the approximate Newton system directly
    ("sketch and solve")::

        reg given:  (U diag(L) U^T + reg I) x = u  ->  x = U diag(1/(L+reg)) U^T u + (u - U U^T u) / reg
        reg None:   x = U diag(1/L) U^T u

    with ``u`` the gradient or the output of ``inner``. Small ``reg`` amplifies the part of ``u``
    outside the sketch and is unstable.

    References: Frangella, Rathore, Zhao & Udell (2024), "SketchySGD: Reliable Stochastic
    Optimization via Randomized Curvature Estimates", SIAM J. Math. Data Sci. 6(4), arXiv:2211.08597;
    Frangella, Tropp & Udell (2023), "Randomized Nystrom preconditioning", SIAM J. Matrix Anal. Appl.
    44(2), arXiv:2110.02820.

    Args:
        rank: sketch size ``r`` (Hessian-vector products per update).
        reg: ``reg I`` added to the approximation (None: pseudo-inverse of the sketch only).
        eigv_tol: relative eigenvalue threshold.
        truncate: number of largest eigenvalues kept.
        damping: added to the eigenvalues.
        rdamping: times the largest eigenvalue, added to the eigenvalues.
        update_freq: recompute the sketch every this many steps.
        orthogonalize_method: how ``Omega`` is orthonormalised (see ``Orthogonalize``).
        hvp_method: ``"batched_autograd"``, ``"autograd"``, ``"fd_forward"`` or ``"fd_central"``.
        h: finite-difference step.
        inner: modules whose output is preconditioned.
        seed: seed of ``Omega``.
    """

    def __init__(self, rank: int = 100, reg: float | None = 1e-2, eigv_tol: float = 0, truncate: int | None = None,
                 damping: float = 0, rdamping: float = 0, update_freq: int = 1, orthogonalize_method: OrthoMethod = "qr",
                 hvp_method: HVPMethod = "batched_autograd", h: float = 1e-3, inner: Chainable | None = None,
                 seed: int | None = None):
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        defaults = dict(rank=rank, reg=reg, eigv_tol=eigv_tol, truncate=truncate, damping=damping, rdamping=rdamping,
                        orthogonalize_method=orthogonalize_method, hvp_method=hvp_method, h=h, seed=seed)
        super().__init__(defaults, update_freq=update_freq, inner=inner)

    def update_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        s = settings[0]
        L, U = _sketch(self, objective, s)
        if L.numel() > 0:
            top = L.max()
            if s["eigv_tol"]:
                keep = L >= s["eigv_tol"] * top
                L, U = L[keep], U[:, keep]
            if s["truncate"] is not None and s["truncate"] < L.numel():
                idx = torch.argsort(L, descending=True)[: s["truncate"]]
                L, U = L[idx], U[:, idx]
            L = L + s["damping"] + s["rdamping"] * top
        self.global_state["L"], self.global_state["U"] = L, U

    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        u = tensors_to_vec(objective.peek_updates())
        L, U = self.global_state["L"], self.global_state["U"]
        reg = settings[0]["reg"]
        c = U.T @ u
        if reg is None:
            d = U @ torch.where(L > 0, c / L.clamp_min(torch.finfo(L.dtype).tiny), torch.zeros_like(c))
        else:
            d = U @ (c / (L + reg)) + (u - U @ c) / reg
        objective.set_updates(vec_to_tensors(d, objective.params), owned=True)
        return objective


class NystromPCG(Transform):
    """Newton-CG with a randomized Nystrom preconditioner (Frangella, Tropp & Udell 2023).

    The Newton system ``(H + reg I) x = u`` is solved by preconditioned conjugate gradient with
    Hessian-vector products. Every ``update_freq`` steps a rank-``r`` Nystrom approximation
    ``H ~ U diag(L) U^T`` (see :func:`nystrom`) gives the preconditioner::

        P^-1 = (L_r + reg) U diag(1/(L + reg)) U^T + (I - U U^T)

    with ``L_r`` the smallest retained eigenvalue (eigenvalues below ``eigv_tol max L`` dropped).
    When ``H`` has a fast-decaying spectrum, ``P^-1 (H + reg I)`` is well conditioned and CG
    converges in few iterations. CG stops when ``||r|| <= tol ||u||`` or after ``maxiter``
    iterations (default: the dimension).

    Reference: Frangella, Tropp & Udell (2023), "Randomized Nystrom preconditioning", SIAM J. Matrix
    Anal. Appl. 44(2), 718-752, arXiv:2110.02820.

    Args:
        rank: sketch size ``r``.
        maxiter: maximum CG iterations.
        tol: relative residual tolerance.
        reg: ``reg I`` added to the Hessian.
        update_freq: recompute the preconditioner every this many steps.
        eigv_tol: relative eigenvalue threshold for the preconditioner.
        orthogonalize_method: how the test matrix is orthonormalised.
        hvp_method: ``"batched_autograd"`` (sketch batched, CG products by autograd), ``"autograd"``,
            ``"fd_forward"`` or ``"fd_central"``.
        h: finite-difference step.
        inner: modules whose output is preconditioned.
        seed: seed of the test matrix.
    """

    def __init__(self, rank: int = 100, maxiter=None, tol=1e-8, reg: float = 1e-6, update_freq: int = 1,
                 eigv_tol: float = 0, orthogonalize_method: OrthoMethod = "qr", hvp_method: HVPMethod = "batched_autograd",
                 h=1e-3, inner: Chainable | None = None, seed: int | None = None):
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        defaults = dict(rank=rank, maxiter=maxiter, tol=tol, reg=reg, eigv_tol=eigv_tol,
                        orthogonalize_method=orthogonalize_method, hvp_method=hvp_method, h=h, seed=seed)
        super().__init__(defaults, update_freq=update_freq, inner=inner)

    def update_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        s = settings[0]
        L, U = _sketch(self, objective, s)
        if L.numel() > 0 and s["eigv_tol"]:
            keep = L >= s["eigv_tol"] * L.max()
            L, U = L[keep], U[:, keep]
        self.global_state["L"], self.global_state["U"] = L, U

    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        s = settings[0]
        params = objective.params
        u = tensors_to_vec(objective.peek_updates()).clone()
        L, U = self.global_state["L"], self.global_state["U"]
        reg = float(s["reg"])
        hvp_method = "autograd" if s["hvp_method"] == "batched_autograd" else s["hvp_method"]
        rgrad: list[list[torch.Tensor] | None] = [None]

        def matvec(v: torch.Tensor) -> torch.Tensor:
            Hv, rgrad[0] = objective.hessian_vector_product(vec_to_tensors(v, params), rgrad[0], True, hvp_method, s["h"])  # type: ignore[arg-type]
            return tensors_to_vec(Hv)

        precond = None
        if L.numel() > 0 and float(L.min()) + reg > 0:
            lr = L.min()

            def nystrom_precond(v: torch.Tensor) -> torch.Tensor:
                c = U.T @ v
                return U @ (c * ((lr + reg) / (L + reg))) + (v - U @ c)
            precond = nystrom_precond

        tol = float(s["tol"]) * float(torch.linalg.vector_norm(u))
        d = cg(matvec, u, tol=tol, maxiter=s["maxiter"], reg=reg, precond=precond)
        objective.set_updates(vec_to_tensors(d, params), owned=True)
        return objective
