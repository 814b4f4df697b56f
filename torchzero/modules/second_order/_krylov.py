"""Matrix-free Krylov solvers on flat vectors for the Hessian-free second-order modules.

Every solver receives ``A`` only as a function ``matvec(v) -> A v`` and works on 1-d tensors.
``reg`` adds ``reg * I`` to ``A`` without touching ``matvec``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

MatVec = Callable[[torch.Tensor], torch.Tensor]


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.dot(a, b)


def cg(matvec: MatVec, b: torch.Tensor, x0: torch.Tensor | None = None, tol: float = 1e-8,
       maxiter: int | None = None, miniter: int = 1, reg: float = 0.0, npc_terminate: bool = False,
       precond: MatVec | None = None) -> torch.Tensor:
    """(Preconditioned) conjugate gradient for ``(A + reg I) x = b``.

    The residual ``||r||`` is tested against ``tol`` (an absolute tolerance) after every iteration
    from iteration ``miniter + 1`` on (``miniter=0`` also tests it before the first iteration);
    at most ``maxiter`` iterations (default: ``len(b)``) are made. A search direction of
    non-positive curvature ``p^T A p <= 0`` stops the solver with the current iterate (with ``b``,
    the steepest-descent direction, on the first iteration) when ``npc_terminate``; otherwise the
    plain CG recurrence goes on, which on an indefinite but nonsingular ``A`` still ends at the
    stationary point ``A^-1 b`` after ``len(b)`` iterations in exact arithmetic.

    Hestenes & Stiefel (1952), "Methods of conjugate gradients for solving linear systems",
    J. Res. Nat. Bur. Standards 49(6).
    """
    n = b.numel()
    if maxiter is None:
        maxiter = n
    bnorm = torch.linalg.vector_norm(b)
    if bnorm == 0:
        return torch.zeros_like(b)
    thresh = tol

    def A(v: torch.Tensor) -> torch.Tensor:
        Av = matvec(v)
        return Av if reg == 0 else Av + reg * v

    if x0 is None:
        x = torch.zeros_like(b)
        r = b.clone()
    else:
        x = x0.clone()
        r = b - A(x)
    z = r if precond is None else precond(r)
    p = z.clone()
    rz = _dot(r, z)
    if miniter < 1 and torch.linalg.vector_norm(r) <= thresh:
        return x
    for k in range(maxiter):
        Ap = A(p)
        curv = _dot(p, Ap)
        if curv <= 0 and npc_terminate:
            return b.clone() if k == 0 else x
        if curv == 0:
            break
        alpha = rz / curv
        x.add_(p, alpha=float(alpha))
        r.sub_(Ap, alpha=float(alpha))
        if k >= miniter and torch.linalg.vector_norm(r) <= thresh:
            break
        z = r if precond is None else precond(r)
        rz_new = _dot(r, z)
        if rz == 0:
            break
        beta = rz_new / rz
        p = z + beta * p
        rz = rz_new
    return x


def minres(matvec: MatVec, b: torch.Tensor, x0: torch.Tensor | None = None, tol: float = 1e-8,
           maxiter: int | None = None, miniter: int = 1, reg: float = 0.0, npc_terminate: bool = False) -> torch.Tensor:
    """Minimal residual method for the symmetric (possibly indefinite) system ``(A + reg I) x = b``.

    Lanczos tridiagonalisation with Givens rotations; stops once the residual norm is at most
    ``tol`` (after ``miniter`` iterations) or after ``maxiter`` iterations. With
    ``npc_terminate`` it also stops as soon as a Lanczos vector has non-positive curvature.

    Paige & Saunders (1975), "Solution of sparse indefinite systems of linear equations",
    SIAM J. Numer. Anal. 12(4).
    """
    n = b.numel()
    if maxiter is None:
        maxiter = n

    def A(v: torch.Tensor) -> torch.Tensor:
        Av = matvec(v)
        return Av if reg == 0 else Av + reg * v

    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b.clone() if x0 is None else b - A(x)
    beta1 = torch.linalg.vector_norm(r)
    bnorm = torch.linalg.vector_norm(b)
    if beta1 == 0 or bnorm == 0:
        return x
    thresh = float(tol)
    v_prev = torch.zeros_like(b)
    v = r / beta1
    beta = float(beta1)
    # rotation and direction recurrences
    c_old, s_old, c, s = 1.0, 0.0, 1.0, 0.0
    w_prev2 = torch.zeros_like(b)
    w_prev = torch.zeros_like(b)
    phi = float(beta1)
    for k in range(maxiter):
        Av = A(v)
        alpha = float(_dot(v, Av))
        if npc_terminate and alpha <= 0 and k >= miniter:
            break
        u = Av - alpha * v - beta * v_prev
        beta_next = float(torch.linalg.vector_norm(u))
        # apply the two previous rotations to the new column (beta, alpha, beta_next)
        eps_k = s_old * beta
        delta_bar = c_old * beta
        delta = c * delta_bar + s * alpha
        gamma_bar = -s * delta_bar + c * alpha
        gamma = (gamma_bar ** 2 + beta_next ** 2) ** 0.5
        if gamma == 0:
            break
        c_new, s_new = gamma_bar / gamma, beta_next / gamma
        w = (v - eps_k * w_prev2 - delta * w_prev) / gamma
        x.add_(w, alpha=c_new * phi)
        phi = -s_new * phi
        w_prev2, w_prev = w_prev, w
        c_old, s_old, c, s = c, s, c_new, s_new
        if beta_next == 0:
            break
        v_prev, v = v, u / beta_next
        beta = beta_next
        if k + 1 >= miniter and abs(phi) <= thresh:
            break
    return x


@dataclass
class SteihaugPath:
    """The piecewise-linear path of truncated CG iterates, kept to re-solve for smaller radii.

    ``xs[k]``, ``rs[k]`` are the iterate and residual before iteration ``k``; ``ps[k]``, ``Aps[k]``
    the direction of iteration ``k`` and its product with ``A``; ``curvs[k] = p_k^T A p_k``.
    ``complete`` is True when the path ended inside every radius (CG converged or ran out of
    iterations); otherwise it was cut at ``radius``.
    """
    b: torch.Tensor
    xs: list[torch.Tensor] = field(default_factory=list)
    rs: list[torch.Tensor] = field(default_factory=list)
    ps: list[torch.Tensor] = field(default_factory=list)
    Aps: list[torch.Tensor] = field(default_factory=list)
    curvs: list[float] = field(default_factory=list)
    final: tuple[torch.Tensor, torch.Tensor] | None = None
    radius: float = float("inf")
    truncated: bool = False


def _to_boundary(x: torch.Tensor, p: torch.Tensor, radius: float) -> float:
    """The ``tau >= 0`` with ``||x + tau p|| = radius``."""
    pp = float(_dot(p, p))
    xp = float(_dot(x, p))
    xx = float(_dot(x, x))
    disc = max(xp * xp - pp * (xx - radius * radius), 0.0)
    return (-xp + disc ** 0.5) / pp


def steihaug_cg(matvec: MatVec, b: torch.Tensor, radius: float, tol: float = 1e-8, maxiter: int | None = None,
                miniter: int = 1, reg: float = 0.0, npc_terminate: bool = False, terminate_on_tr: bool = True,
                max_history: int = 100) -> tuple[torch.Tensor, torch.Tensor, SteihaugPath]:
    """Steihaug-Toint truncated CG for ``min_d  -b^T d + d^T (A + reg I) d / 2`` s.t. ``||d|| <= radius``.

    CG runs from ``d = 0``; when an iterate would leave the ball, or a direction of non-positive
    curvature appears, the step goes along the current direction to the boundary and stops. CG also
    stops when ``||r|| <= tol`` (after ``miniter`` iterations) or after ``maxiter`` (default ``len(b)``)
    iterations. With ``terminate_on_tr=False`` CG ignores the boundary and its solution is scaled
    back onto it. With ``npc_terminate`` negative curvature stops CG at the current iterate instead.

    Returns ``(d, r, path)``: the step, its residual ``b - (A + reg I) d`` and the path, from which
    :func:`steihaug_from_path` gets the solution for a smaller radius without new products.

    Steihaug (1983), "The conjugate gradient method and trust regions in large scale optimization",
    SIAM J. Numer. Anal. 20(3); Toint (1981), "Towards an efficient sparsity exploiting Newton method
    for minimization", in Sparse Matrices and Their Uses.
    """
    n = b.numel()
    if maxiter is None:
        maxiter = n

    def A(v: torch.Tensor) -> torch.Tensor:
        Av = matvec(v)
        return Av if reg == 0 else Av + reg * v

    path = SteihaugPath(b=b, radius=radius)
    x = torch.zeros_like(b)
    r = b.clone()
    if float(torch.linalg.vector_norm(b)) == 0:
        path.final = (x, r)
        return x, r, path
    p = r.clone()
    rr = _dot(r, r)
    for k in range(maxiter):
        if k >= miniter and float(rr) ** 0.5 <= tol:
            break
        Ap = A(p)
        curv = float(_dot(p, Ap))
        if len(path.xs) < max_history:
            path.xs.append(x.clone()); path.rs.append(r.clone())
            path.ps.append(p.clone()); path.Aps.append(Ap.clone()); path.curvs.append(curv)
        else:
            path.truncated = True
        if curv <= 0:
            if npc_terminate and k > 0:
                break
            if not terminate_on_tr:
                break
            tau = _to_boundary(x, p, radius)
            return x + tau * p, r - tau * Ap, path
        alpha = float(rr) / curv
        x_next = x + alpha * p
        if terminate_on_tr and float(torch.linalg.vector_norm(x_next)) >= radius:
            tau = _to_boundary(x, p, radius)
            return x + tau * p, r - tau * Ap, path
        x = x_next
        r = r - alpha * Ap
        rr_new = _dot(r, r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    path.final = (x, r)
    nrm = float(torch.linalg.vector_norm(x))
    if not terminate_on_tr and nrm > radius:
        # the residual of the scaled step: b - s A x = (1 - s) b + s r
        s = radius / nrm
        return x * s, (1 - s) * b + s * r, path
    return x, r, path


def steihaug_from_path(path: SteihaugPath, radius: float) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The Steihaug solution for ``radius <= path.radius`` from a stored path (``None`` when the
    stored part of the path does not reach it)."""
    for x, r, p, Ap, curv in zip(path.xs, path.rs, path.ps, path.Aps, path.curvs):
        if curv <= 0:
            tau = _to_boundary(x, p, radius)
            return x + tau * p, r - tau * Ap
        alpha = float(_dot(r, r)) / curv
        if float(torch.linalg.vector_norm(x + alpha * p)) >= radius:
            tau = _to_boundary(x, p, radius)
            return x + tau * p, r - tau * Ap
    if path.final is not None and not path.truncated:
        x, r = path.final
        if float(torch.linalg.vector_norm(x)) <= radius:
            return x, r
    return None
