"""Matrix functions shared by the matrix preconditioners of this family.

* orthogonalization (the "zeroth power" ``U V^T`` of ``A = U S V^T``), batched over leading dims;
* symmetric matrix powers ``A^p`` through an eigendecomposition or an SVD;
* reshaping helpers for Kronecker-factored (Shampoo / SOAP) preconditioners.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

# quintic Newton-Schulz coefficients tuned for Muon (Jordan et al., 2024): they push every singular
# value of a Frobenius-normalised matrix into roughly [0.7, 1.2] in five steps.
_MUON_COEFS = (3.4445, -4.7750, 2.0315)
# the quintic with p(1) = 1, p'(1) = p''(1) = 0 (the degree-5 member of the Newton-Schulz family)
_CONVERGENT_COEFS = (1.875, -1.25, 0.375)
# Polar Express (Amsel, Persson, Musco & Gower, 2025, arXiv:2505.16932): per-step minimax-optimal
# odd quintics for singular values in [1e-3, 1]; every step but the last is damped by 1.01.
_POLAR_EXPRESS = (
    (8.28721201814563, -23.595886519098837, 17.300387312530933),
    (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
    (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
    (3.3184196573706015, -2.488488024314874, 0.51004894012372),
    (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
    (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
    (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
)
_PE_SAFETY = 1.01

ORTHO_METHODS = ("newtonschulz", "ns5", "polar_express", "svd", "qr", "eigh")


def _quintic_steps(X: torch.Tensor, coefs: Sequence[tuple[float, float, float]]) -> torch.Tensor:
    # X has shape (..., m, n) with m <= n, so the Gram matrices are the small ones
    for a, b, c in coefs:
        gram = X @ X.mT
        poly = torch.baddbmm(gram, gram, gram, beta=b, alpha=c) if gram.ndim == 3 else b * gram + c * (gram @ gram)
        X = torch.baddbmm(X, poly, X, beta=a) if X.ndim == 3 else a * X + poly @ X
    return X


def _wide(A: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if A.shape[-2] > A.shape[-1]:
        return A.mT, True
    return A, False


def newton_schulz(A: torch.Tensor, coefs: Sequence[tuple[float, float, float]], dtype: torch.dtype | None = torch.bfloat16,
                  norm_scale: float = 1.0) -> torch.Tensor:
    """Odd-polynomial iteration ``X <- a X + (b X X^T + c (X X^T)^2) X`` from ``X0 = A / (s ||A||_F)``."""
    X, t = _wide(A)
    work = X.to(dtype) if dtype is not None else X
    norm = torch.linalg.matrix_norm(work.float(), keepdim=True).to(work.dtype)
    X = work / (norm * norm_scale + 1e-7)
    X = _quintic_steps(X, coefs)
    X = X.to(A.dtype)
    return X.mT if t else X


def polar_express(A: torch.Tensor, max_extra: int = 20) -> torch.Tensor:
    """Polar Express, then convergent Newton-Schulz steps until the iterate stops changing."""
    work_dtype = A.dtype if A.dtype in (torch.float32, torch.float64) else torch.float32
    X, t = _wide(A.to(work_dtype))
    X = X / (torch.linalg.matrix_norm(X, keepdim=True) * _PE_SAFETY + 1e-7)
    n = len(_POLAR_EXPRESS)
    coefs = [(a / _PE_SAFETY, b / _PE_SAFETY ** 3, c / _PE_SAFETY ** 5) if i < n - 1 else (a, b, c)
             for i, (a, b, c) in enumerate(_POLAR_EXPRESS)]
    X = _quintic_steps(X, coefs)
    tol = 10 * torch.finfo(work_dtype).eps
    for _ in range(max_extra):
        Y = _quintic_steps(X, [_CONVERGENT_COEFS])
        done = bool((Y - X).abs().max() <= tol)
        X = Y
        if done:
            break
    X = X.to(A.dtype)
    return X.mT if t else X


def _svd_polar(A: torch.Tensor) -> torch.Tensor:
    U, _, Vh = torch.linalg.svd(A, full_matrices=False)
    return U @ Vh


def _qr_orth(A: torch.Tensor) -> torch.Tensor:
    if A.shape[-2] >= A.shape[-1]:
        return torch.linalg.qr(A).Q
    return torch.linalg.qr(A.mT).Q.mT


def _eigh_polar(A: torch.Tensor) -> torch.Tensor:
    # U V^T = A (A^T A)^{-1/2} = (A A^T)^{-1/2} A, using the smaller Gram matrix
    X, t = _wide(A)
    L, Q = torch.linalg.eigh(X @ X.mT)
    tiny = torch.finfo(L.dtype).eps * L.amax(-1, keepdim=True).clamp_min(torch.finfo(L.dtype).tiny)
    inv_sqrt = torch.where(L > tiny, L.clamp_min(torch.finfo(L.dtype).tiny).rsqrt(), torch.zeros_like(L))
    X = (Q * inv_sqrt.unsqueeze(-2)) @ Q.mT @ X
    return X.mT if t else X


def orthogonalize(A: torch.Tensor, method: str = "newtonschulz") -> torch.Tensor:
    """The orthogonal polar factor ``U V^T`` of each matrix in the last two dims of ``A``."""
    if method == "newtonschulz":
        return newton_schulz(A, [_MUON_COEFS] * 5 + [_CONVERGENT_COEFS] * 2)
    if method == "ns5":
        return newton_schulz(A, [_MUON_COEFS] * 5)
    if method == "polar_express":
        return polar_express(A)
    if method == "svd":
        return _svd_polar(A)
    if method == "qr":
        return _qr_orth(A)
    if method == "eigh":
        return _eigh_polar(A)
    raise ValueError(f"method must be one of {ORTHO_METHODS}, got {method!r}")


def matrix_dims(t: torch.Tensor, channel_first: bool) -> tuple[int, int] | None:
    """The two dims that form the matrices of ``t`` (None when ``t`` holds no proper matrices)."""
    if t.ndim < 2:
        return None
    d = (0, 1) if channel_first else (t.ndim - 2, t.ndim - 1)
    if t.shape[d[0]] < 2 or t.shape[d[1]] < 2:
        return None
    return d


def as_matrices(t: torch.Tensor, dims: tuple[int, int]) -> torch.Tensor:
    """A view of ``t`` as a batch ``(B, m, n)`` of the matrices over ``dims``."""
    x = torch.movedim(t, dims, (-2, -1))
    return x.reshape(-1, x.shape[-2], x.shape[-1])


def from_matrices(x: torch.Tensor, like: torch.Tensor, dims: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`as_matrices`."""
    moved_shape = [s for i, s in enumerate(like.shape) if i not in dims] + [like.shape[dims[0]], like.shape[dims[1]]]
    return torch.movedim(x.reshape(moved_shape), (-2, -1), dims)


# ---------------------------------------------------------------------------------------------
# symmetric matrix powers

POWER_METHODS = ("eigh", "eigh_abs", "svd")


def sym_matrix_power(A: torch.Tensor, power: float, method: str = "eigh_abs") -> torch.Tensor:
    """``A^power`` of a symmetric positive semi-definite matrix.

    * ``eigh``: ``Q diag(max(L, 0)^power) Q^T`` (non-positive eigenvalues give 0 for negative powers);
    * ``eigh_abs``: ``Q diag(|L|^power) Q^T``, tolerant of round-off that makes eigenvalues negative;
    * ``svd``: ``U diag(S^power) U^T``.
    """
    if method in ("eigh", "eigh_abs"):
        L, Q = _safe_eigh(A)
        L = L.abs() if method == "eigh_abs" else L.clamp_min(0)
    elif method == "svd":
        Q, L, _ = torch.linalg.svd(A)
    else:
        raise ValueError(f"matrix_power_method must be one of {POWER_METHODS}, got {method!r}")
    if power < 0:
        Lp = torch.where(L > 0, L.clamp_min(torch.finfo(L.dtype).tiny).pow(power), torch.zeros_like(L))
    else:
        Lp = L.pow(power)
    return (Q * Lp.unsqueeze(-2)) @ Q.mT


def _safe_eigh(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    A = (A + A.mT) / 2
    try:
        return torch.linalg.eigh(A)
    except torch.linalg.LinAlgError:
        L, Q = torch.linalg.eigh(A.double())
        return L.to(A.dtype), Q.to(A.dtype)


def merged_shape(shape: Sequence[int], max_dim: int) -> list[int]:
    """Merges neighbouring dims whose product stays ``<= max_dim`` (greedy, left to right)."""
    out: list[int] = []
    for s in shape:
        if out and out[-1] * s <= max_dim:
            out[-1] *= s
        else:
            out.append(int(s))
    return out


def prod(xs: Sequence[int]) -> int:
    return int(math.prod(xs))
