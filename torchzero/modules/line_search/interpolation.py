"""One-dimensional interpolation steps used by the zoom phase of line searches.

Each function returns a trial step size inside ``[lo, hi]`` (``lo < hi``) from points
``(t, phi(t), phi'(t))`` (Nocedal & Wright, 2006, "Numerical Optimization", section 3.5).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _clip(t: float, lo: float, hi: float) -> float:
    if not math.isfinite(t):
        return (lo + hi) / 2
    return min(max(t, lo), hi)


def bisection(lo: float, hi: float) -> float:
    return (lo + hi) / 2


def cubic(t1: float, f1: float, g1: float, t2: float, f2: float, g2: float, lo: float, hi: float) -> float:
    """Minimizer of the cubic matching values and slopes at ``t1`` and ``t2`` (N&W eq. 3.59)."""
    if t1 == t2:
        return (lo + hi) / 2
    d1 = g1 + g2 - 3 * (f1 - f2) / (t1 - t2)
    disc = d1 * d1 - g1 * g2
    if not disc >= 0 or not math.isfinite(disc):
        return (lo + hi) / 2
    d2 = math.copysign(math.sqrt(disc), t2 - t1)
    denom = g2 - g1 + 2 * d2
    if denom == 0:
        return (lo + hi) / 2
    return _clip(t2 - (t2 - t1) * (g2 + d2 - d1) / denom, lo, hi)


def quadratic(t1: float, f1: float, g1: float, t2: float, f2: float, lo: float, hi: float) -> float:
    """Minimizer of the parabola through ``(t1, f1)`` with slope ``g1`` and through ``(t2, f2)``."""
    h = t2 - t1
    curv = f2 - f1 - g1 * h
    if h == 0 or not curv > 0:
        return (lo + hi) / 2
    return _clip(t1 - g1 * h * h / (2 * curv), lo, hi)


def polynomial(points: Sequence[tuple[float, float, float]], lo: float, hi: float, lower_degree: bool = False) -> float:
    """Minimizer in ``[lo, hi]`` of the polynomial fitted (least squares) to the values and slopes of all ``points``.

    The degree is ``2 n - 1`` for ``n`` points (Hermite interpolation), at most 7. With
    ``lower_degree``, when the minimizer falls outside ``(lo, hi)`` the oldest points are dropped
    and a lower-degree polynomial is tried; the last resort is bisection.
    """
    pts = list(points)
    while len(pts) >= 2:
        t = _poly_min(pts[-4:], lo, hi)
        if t is not None and (not lower_degree or lo < t < hi):
            return t
        if not lower_degree:
            break
        pts = pts[1:]
    return (lo + hi) / 2


def _poly_min(pts: Sequence[tuple[float, float, float]], lo: float, hi: float) -> float | None:
    ts = np.array([p[0] for p in pts], dtype=np.float64)
    if not np.all(np.isfinite([v for p in pts for v in p])):
        return None
    # shift and scale t for conditioning
    c, s = (lo + hi) / 2, max((hi - lo) / 2, 1e-300)
    u = (ts - c) / s
    deg = min(2 * len(pts) - 1, 7)
    powers = np.arange(deg + 1)
    V = u[:, None] ** powers
    D = np.zeros_like(V)
    D[:, 1:] = powers[1:] * u[:, None] ** (powers[1:] - 1)
    A = np.concatenate([V, D])
    b = np.concatenate([[p[1] for p in pts], [p[2] * s for p in pts]])
    try:
        coef = np.linalg.lstsq(A, b, rcond=None)[0]
    except np.linalg.LinAlgError:
        return None
    poly = np.polynomial.Polynomial(coef)
    cands = [-1.0, 1.0] + [float(r.real) for r in poly.deriv().roots() if abs(r.imag) < 1e-12 and -1 <= r.real <= 1]
    vals = [float(poly(x)) for x in cands]
    best = cands[int(np.argmin(vals))]
    t = c + s * best
    return t if math.isfinite(t) else None
