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
_PE_LOWER = 1e-3  # the smallest singular value (of the normalised matrix) the schedule is built for
_PE_STEPS = 7
_PE_CUSHION = 0.02407327424182761  # the paper's floor on l / u when fitting a step's polynomial


def _minimax_odd_quintic(lo: float, hi: float) -> tuple[float, float, float]:
    """``(a, b, c)`` of the odd quintic ``p(x) = a x + b x^3 + c x^5`` closest to 1 in the max norm
    on ``[lo, hi]`` (Remez exchange).

    By equioscillation the optimum touches ``1 - E`` at ``lo`` and at an interior point ``r`` and
    ``1 + E`` at an interior point ``q`` and at ``hi``: four linear equations in ``(a, b, c, E)``.
    The interior points are then moved to the critical points of ``p`` (``p'(x) = 0`` is a
    quadratic in ``x^2``) until ``E`` stops changing. When ``lo`` is almost ``hi`` the optimum is
    the convergent quintic ``(15/8, -10/8, 3/8)`` scaled to ``hi``."""
    if lo >= hi * (1 - 5e-6):
        return 1.875 / hi, -1.25 / hi ** 3, 0.375 / hi ** 5
    q, r = (3 * lo + hi) / 4, (lo + 3 * hi) / 4
    err_before = math.inf
    for _ in range(100):
        pts = torch.tensor([lo, q, r, hi], dtype=torch.float64)
        sign = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)  # p(x) = 1 - sign * E
        system = torch.stack([pts, pts ** 3, pts ** 5, sign], dim=1)
        a, b, c, err = torch.linalg.solve(system, torch.ones(4, dtype=torch.float64)).tolist()
        root = math.sqrt(9 * b * b - 20 * a * c)
        q, r = sorted(math.sqrt((-3 * b + s * root) / (10 * c)) for s in (1.0, -1.0))
        if abs(err - err_before) <= 1e-15:
            break
        err_before = err
    return a, b, c


def polar_express_schedule(lower: float = _PE_LOWER, steps: int = _PE_STEPS,
                           cushion: float = _PE_CUSHION) -> tuple[tuple[float, float, float], ...]:
    """The Polar Express polynomials (Amsel, Persson, Musco & Gower, 2025, arXiv:2505.16932).

    Greedy: with the singular values known to lie in ``[l, u]`` (initially ``[lower, 1]``), each
    step is the odd quintic closest to 1 on ``[max(l, cushion * u), u]``, rescaled so that it
    maps ``l`` and ``u`` symmetrically around 1 (``p(l) + p(u) = 2``). The singular values then
    lie in ``[p(l), 2 - p(l)]``, which becomes the next interval. The cushion keeps the first
    polynomials from growing huge derivatives near 0."""
    lo, hi = float(lower), 1.0
    out = []
    for _ in range(steps):
        a, b, c = _minimax_odd_quintic(max(lo, cushion * hi), hi)
        k = 2.0 / (a * (lo + hi) + b * (lo ** 3 + hi ** 3) + c * (lo ** 5 + hi ** 5))
        a, b, c = a * k, b * k, c * k
        out.append((a, b, c))
        lo = a * lo + b * lo ** 3 + c * lo ** 5
        hi = 2.0 - lo
    return tuple(out)


_POLAR_EXPRESS = polar_express_schedule()
_PE_SAFETY = 1.01  # every polynomial but the last is damped by this (the paper's safety factor)

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
