"""Subproblem solvers of the trust-region modules, on flat vectors and linear operators."""
from __future__ import annotations

import math

import torch

from ...linalg import Diagonal, LinearOperator, ScaledIdentity


def to_boundary(z: torch.Tensor, p: torch.Tensor, radius: float) -> float:
    """The ``tau >= 0`` with ``||z + tau p|| = radius`` (``||z|| <= radius``)."""
    a = float(p.dot(p))
    if a == 0:
        return 0.0
    b = 2 * float(z.dot(p))
    c = float(z.dot(z)) - radius ** 2
    disc = max(b * b - 4 * a * c, 0.0)
    # the positive root, in the form that avoids cancellation
    if b >= 0:
        q = -0.5 * (b + math.sqrt(disc))
        return c / q if q != 0 else 0.0
    return (-b + math.sqrt(disc)) / (2 * a)


def clip_to_radius(d: torch.Tensor, radius: float) -> torch.Tensor:
    n = float(d.norm())
    if n > radius and n > 0:
        return d * (radius / n)
    return d


def exact_diagonal_step(H: LinearOperator, g: torch.Tensor, radius: float, reg: float) -> torch.Tensor | None:
    """For a positive scaled identity ``s I`` the bounded minimiser is ``g / (s + reg)`` shortened to the
    radius; None for any other operator."""
    if isinstance(H, ScaledIdentity):
        s = float(H.s) + reg
        if s > 0:
            return clip_to_radius(g / s, radius)
    if isinstance(H, Diagonal):
        d = H.d + reg
        if bool((d > 0).all()) and bool((d == d[0]).all()):
            return clip_to_radius(g / d, radius)
    return None


def steihaug_cg(H: LinearOperator, g: torch.Tensor, radius: float, reg: float = 0.0, tol: float = 1e-8,
                maxiter: int | None = None, miniter: int = 1) -> torch.Tensor:
    """Steihaug-Toint conjugate gradient for ``min_d -g^T d + 1/2 d^T (B + reg I) d``, ``||d|| <= radius``.

    CG on ``(B + reg I) d = g`` from ``d = 0``; stops at the boundary when an iterate leaves the
    region or a direction of non-positive curvature appears, or when the residual norm falls below
    ``tol * ||g||`` (after at least ``miniter`` iterations). Steihaug (1983), "The conjugate
    gradient method and trust regions in large scale optimization", SIAM J. Numer. Anal. 20(3),
    doi:10.1137/0720042; Toint (1981).
    """
    n = g.numel()
    if maxiter is None:
        maxiter = n
    z = torch.zeros_like(g)
    r = g.clone()
    p = r.clone()
    rr = float(r.dot(r))
    gnorm = math.sqrt(rr)
    if gnorm == 0:
        return z
    for it in range(max(int(maxiter), 1)):
        Hp = H.matvec(p)
        if reg != 0:
            Hp = Hp + reg * p
        curv = float(p.dot(Hp))
        if curv <= 0:
            return z + to_boundary(z, p, radius) * p
        alpha = rr / curv
        z_next = z + alpha * p
        if float(z_next.norm()) >= radius:
            return z + to_boundary(z, p, radius) * p
        z = z_next
        r = r - alpha * Hp
        rr_next = float(r.dot(r))
        if math.sqrt(rr_next) <= tol * gnorm and it + 1 >= miniter:
            break
        p = r + (rr_next / rr) * p
        rr = rr_next
    return z


def dogleg_step(H: LinearOperator, g: torch.Tensor, radius: float) -> torch.Tensor:
    """Powell's dogleg (Powell, 1970, "A hybrid method for nonlinear equations"; Nocedal & Wright, 4.1).

    The path runs from 0 to the Cauchy point ``d_c = (g^T g / g^T B g) g`` and on to the Newton point
    ``d_n = B^-1 g``; the step is where it leaves the region (or ``d_n`` when inside). Without
    positive curvature along ``g``, the steepest-descent step to the boundary.
    """
    gnorm = float(g.norm())
    if gnorm == 0:
        return torch.zeros_like(g)
    gBg = float(g.dot(H.matvec(g)))
    if gBg <= 0:
        return g * (radius / gnorm)
    d_n = H.solve(g)
    if torch.isfinite(d_n).all() and float(g.dot(d_n)) > 0 and float(d_n.norm()) <= radius:
        return d_n
    tau_c = gnorm ** 2 / gBg
    d_c = g * tau_c
    if tau_c * gnorm >= radius or not bool(torch.isfinite(d_n).all()):
        return g * (radius / gnorm)
    p = d_n - d_c
    return d_c + to_boundary(d_c, p, radius) * p


def cubic_step(H: LinearOperator, g: torch.Tensor, sigma: float, maxiter: int = 100, eps: float = 1e-8) -> torch.Tensor:
    """The global minimiser of ``-g^T d + 1/2 d^T B d + sigma/3 ||d||^3``.

    It satisfies ``(B + sigma ||d|| I) d = g`` with ``B + sigma ||d|| I`` positive semidefinite
    (Nesterov & Polyak, 2006, "Cubic regularization of Newton method and its global performance",
    Math. Program. 108, doi:10.1007/s10107-006-0706-8; Cartis, Gould & Toint, 2011, "Adaptive cubic
    regularisation methods", Math. Program. 127, doi:10.1007/s10107-009-0286-5). With ``B = Q L Q^T``
    and ``a = Q^T g`` this is the scalar equation ``phi(r) = ||a / (L + sigma r)|| - r = 0`` for
    ``r = ||d||`` on ``r > max(0, -L_min / sigma)``, where ``phi`` decreases; it is solved by
    safeguarded Newton iterations (at most ``maxiter``, to relative accuracy ``eps``).
    """
    B = H.to_tensor()
    B = 0.5 * (B + B.T)
    L, Q = torch.linalg.eigh(B)
    a = Q.T @ g
    if float(a.norm()) == 0:
        return torch.zeros_like(g)
    lmin = float(L.min())
    lo = max(0.0, -lmin / sigma)
    if lo > 0:
        # the "hard case": g (almost) orthogonal to the eigenvectors of L_min, so that even at
        # r = lo the norm of the step stays below r; the minimiser then has ||d|| = lo and a component
        # along an eigenvector of L_min completing it
        near = (L - lmin).abs() <= 1e-12 * max(1.0, abs(lmin))
        den = (L + sigma * lo).masked_fill(near, 1.0)
        s0 = (a / den).masked_fill(near, 0.0)
        if float(a[near].norm()) <= 1e-12 * float(a.norm()) and float(s0.norm()) < lo:
            v = torch.zeros_like(s0)
            v[int(torch.nonzero(near)[0])] = 1.0
            tau = math.sqrt(max(lo ** 2 - float(s0.dot(s0)), 0.0))
            return Q @ (s0 + tau * v)

    def phi(r: float) -> tuple[float, float]:
        den = L + sigma * r
        s = a / den
        sn = float(s.norm())
        # d||s||/dr = -sigma * sum(a^2 / den^3) / ||s||
        ds = -sigma * float((a * a / den ** 3).sum()) / sn if sn > 0 else 0.0
        return sn - r, ds - 1

    # bracket the root: phi(lo+) > 0 (or the hard case), phi(hi) < 0
    hi = max(lo, 1.0)
    while phi(hi)[0] > 0:
        hi *= 2
    lo_b = lo
    r = hi
    for _ in range(int(maxiter)):
        val, der = phi(r)
        if val > 0:
            lo_b = r
        else:
            hi = r
        r_new = r - val / der if der != 0 else 0.5 * (lo_b + hi)
        if not (lo_b < r_new < hi):
            r_new = 0.5 * (lo_b + hi)
        if abs(r_new - r) <= eps * max(r, 1e-300):
            r = r_new
            break
        r = r_new
    den = L + sigma * r
    return Q @ (a / den)
