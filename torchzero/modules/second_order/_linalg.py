"""Small dense linear-algebra helpers shared by the second-order modules."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch


def solve(H: torch.Tensor, b: torch.Tensor, use_lstsq: bool = False) -> torch.Tensor:
    """``x`` with ``H x = b``: Cholesky, then LU if ``H`` is not positive definite, then least
    squares if ``H`` is singular (or straight to least squares with ``use_lstsq``)."""
    rhs = b.unsqueeze(-1)
    if not use_lstsq:
        L, info = torch.linalg.cholesky_ex(H)
        if info.item() == 0:
            x = torch.cholesky_solve(rhs, L)
            if torch.isfinite(x).all():
                return x.squeeze(-1)
        x, info = torch.linalg.solve_ex(H, rhs)
        if info.item() == 0 and torch.isfinite(x).all():
            return x.squeeze(-1)
    return torch.linalg.lstsq(H, rhs).solution.squeeze(-1)


def inverse(H: torch.Tensor, use_lstsq: bool = False) -> torch.Tensor:
    """``H^-1`` (the pseudo-inverse where ``H`` is singular or ``use_lstsq``)."""
    if not use_lstsq:
        Hi, info = torch.linalg.inv_ex(H)
        if info.item() == 0 and torch.isfinite(Hi).all():
            return Hi
    return torch.linalg.pinv(H)


def eigh_transform(H: torch.Tensor, eigval_fn: Callable[[torch.Tensor], torch.Tensor] | None,
                   eigv_tol: float | None, truncate: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigendecomposition ``H = Q diag(L) Q^T`` with ``eigval_fn`` applied to ``L``, eigenpairs with
    ``|L_i| < eigv_tol * max|L|`` dropped and only the ``truncate`` largest (by magnitude) kept."""
    L, Q = torch.linalg.eigh(H)
    if eigval_fn is not None:
        L = eigval_fn(L)
    if eigv_tol is not None and L.numel() > 0:
        keep = L.abs() >= eigv_tol * L.abs().max()
        L, Q = L[keep], Q[:, keep]
    if truncate is not None and truncate < L.numel():
        idx = torch.argsort(L.abs(), descending=True)[:truncate]
        L, Q = L[idx], Q[:, idx]
    return L, Q


def eig_solve(L: torch.Tensor, Q: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``Q diag(1/L) Q^T b`` (zero where ``L`` is zero)."""
    coef = Q.T @ b
    inv = torch.where(L != 0, 1 / L, torch.zeros_like(L))
    return Q @ (coef * inv)


def factor_system(store: dict, A: torch.Tensor, settings: Mapping[str, Any], update_freq: int, key: str) -> None:
    """Keeps in ``store`` what solving ``A x = v`` later needs: ``A`` under ``key``, and either its
    inverse (``key + "_inv"``; precomputed when ``precompute_inverse`` says so, or by default when the
    matrix is reused for ``update_freq >= 10`` steps), or the eigen-decomposition ``L``, ``Q`` when
    the eigenvalues are transformed (``eigval_fn`` / ``eigv_tol`` / ``truncate``)."""
    s = settings
    for k in (key, key + "_inv", "L", "Q"):
        store.pop(k, None)
    store[key] = A
    precompute = s["precompute_inverse"]
    if precompute is None:
        precompute = update_freq >= 10
    if s["eigval_fn"] is not None or s["eigv_tol"] is not None or s["truncate"] is not None:
        L, Q = eigh_transform(A, s["eigval_fn"], s["eigv_tol"], s["truncate"])
        if precompute:
            store[key + "_inv"] = Q @ torch.diag(torch.where(L != 0, 1 / L, torch.zeros_like(L))) @ Q.T
        else:
            store["L"], store["Q"] = L, Q
    elif precompute:
        store[key + "_inv"] = inverse(A, s["use_lstsq"])


def solve_system(store: Mapping[str, Any], v: torch.Tensor, use_lstsq: bool, key: str) -> torch.Tensor:
    """``A^-1 v`` from what :func:`factor_system` kept."""
    if key + "_inv" in store:
        return store[key + "_inv"] @ v
    if "L" in store:
        return eig_solve(store["L"], store["Q"], v)
    return solve(store[key], v, use_lstsq)
