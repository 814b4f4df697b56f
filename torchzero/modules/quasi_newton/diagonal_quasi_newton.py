"""Diagonal quasi-Newton methods: the approximation is a vector ``d`` standing for ``diag(d)``.

They cost O(n) memory and time, like Adam, but get their scale from ``s = x_k - x_{k-1}`` and
``y = g_k - g_{k-1}``. Products and squares of vectors below are elementwise.
"""
from __future__ import annotations

from typing import Literal

import torch

from ...core.chain import Chainable
from ...linalg import Diagonal
from .base import HessianUpdateStrategy
from .quasi_newton import _QN

__all__ = ["DiagonalBFGS", "DiagonalSR1", "DiagonalQuasiCauchi", "DiagonalWeightedQuasiCauchi", "DNRTR", "NewDQN"]

_Scale = float | Literal["auto"]


class _Diagonal(HessianUpdateStrategy):
    """Diagonal approximation: ``P`` is a vector, preconditioning is elementwise."""

    def initialize_P(self, size, device, dtype, is_inverse):
        return torch.ones(size, device=device, dtype=dtype)


class _DiagonalQN(_Diagonal, _QN):
    pass


class DiagonalBFGS(_DiagonalQN):
    """BFGS restricted to the diagonal (inverse form only).

    The full update ``(I - rho s y^T) H (I - rho y s^T) + rho s s^T`` with ``rho = 1 / s^T y`` is
    applied with ``H`` and the projection ``I - rho s y^T`` both replaced by their diagonals::

        h+ = (1 - rho s y)^2 h + rho s^2

    This no longer satisfies the secant equation but keeps ``h`` positive when ``s^T y > 0``
    (the update is skipped when ``s^T y <= tol``).
    """

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        sy = float(s.dot(y))
        if not sy > setting["tol"]:
            return H
        rho = 1 / sy
        return H.mul_((1 - rho * s * y) ** 2).addcmul_(s, s, value=rho)


class DiagonalSR1(_DiagonalQN):
    """The diagonal of the SR1 update.

    Inverse form ``h+ = h + r^2 / (r^T y)`` with ``r = s - h y``; direct form ``b+ = b + r^2 / (r^T s)``
    with ``r = y - b s``. Skipped unless ``|r^T y| > tol |r| |y|``; as for :class:`SR1`, the first
    update after the ``init_scale="auto"`` rescaling divides by an exact zero and is skipped. It does
    not satisfy the secant equation but may still be useful.
    """

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        if self._just_scaled:
            return H
        return _diag_sr1(H, s - H * y, y, setting["tol"])

    def update_B(self, B, s, y, p, g, p_prev, g_prev, state, setting):
        if self._just_scaled:
            return B
        return _diag_sr1(B, y - B * s, s, setting["tol"])


def _diag_sr1(P: torch.Tensor, r: torch.Tensor, v: torch.Tensor, tol: float) -> torch.Tensor:
    rv = float(r.dot(v))
    if not (abs(rv) > tol * float(r.norm()) * float(v.norm()) and rv != 0):
        return P
    return P.addcmul_(r, r, value=1 / rv)


class _DiagonalDirect(_DiagonalQN):
    """Direct-form defaults (``inverse=False``)."""

    def __init__(self, init_scale: _Scale = "auto", tol: float = 1e-32, ptol: float | None = 1e-32,
                 ptol_restart: bool = False, gtol: float | None = 1e-32, restart_interval: int | None = None,
                 beta: float | None = None, update_freq: int = 1, scale_first: bool = False,
                 concat_params: bool = True, inverse: bool = False, inner: Chainable | None = None):
        super().__init__(init_scale=init_scale, tol=tol, ptol=ptol, ptol_restart=ptol_restart, gtol=gtol,
                         restart_interval=restart_interval, beta=beta, update_freq=update_freq,
                         scale_first=scale_first, concat_params=concat_params, inverse=inverse, inner=inner)


def _weighted_quasi_cauchy(B: torch.Tensor, s: torch.Tensor, y: torch.Tensor, tol: float) -> torch.Tensor:
    w = (s * B) ** 2
    den = float(w.dot(s * s))
    if not abs(den) > tol or den == 0:
        return B
    return B.add_(w, alpha=(float(s.dot(y)) - float(s.dot(B * s))) / den)


class DiagonalQuasiCauchi(_DiagonalDirect):
    """Diagonal update satisfying the weak (quasi-Cauchy) secant condition ``s^T B s = s^T y``.

    The least-change (Frobenius norm) diagonal correction is
    ``b+ = b + (s^T y - s^T b s) s^2 / sum(s^4)`` (direct form only). Zhu, Nazareth & Wolkowicz
    (1999), "The quasi-Cauchy relation and diagonal updating", SIAM Journal on Optimization 9(4),
    1192-1204.
    """

    def update_B(self, B, s, y, p, g, p_prev, g_prev, state, setting):
        s2 = s * s
        den = float(s2.dot(s2))
        if not abs(den) > setting["tol"] or den == 0:
            return B
        return B.add_(s2, alpha=(float(s.dot(y)) - float(s.dot(B * s))) / den)


class DiagonalWeightedQuasiCauchi(_DiagonalDirect):
    """Diagonal quasi-Cauchy update that is least-change in a weighted Frobenius norm.

    The correction is weighted by the current diagonal, so large entries move more:
    ``b+ = b + (s^T y - s^T b s) (b s)^2 / sum(b^2 s^4)``; it satisfies ``s^T b+ s = s^T y``
    (direct form only). Leong, Enshaei & Kek (2021), "Diagonal quasi-Newton methods via least
    change updating principle with weighted Frobenius norm", Numerical Algorithms 86, 1225-1241.
    """

    def update_B(self, B, s, y, p, g, p_prev, g_prev, state, setting):
        return _weighted_quasi_cauchy(B, s, y, setting["tol"])


class DNRTR(_Diagonal):
    """Diagonal quasi-Newton method of Andrei (2019) with entries kept in ``[lb, ub]``.

    The diagonal ``b`` gets the weighted least-change quasi-Cauchy correction
    ``b+ = b + (s^T y - s^T b s) (b s)^2 / sum(b^2 s^4)`` (so that ``s^T b+ s = s^T y``). When it is
    used for the step, entries outside ``[lb, ub]`` are replaced by 1 (a gradient step in those
    coordinates), which keeps the step a descent direction with bounded scaling. Andrei (2019), "A diagonal quasi-Newton updating method for unconstrained
    optimization", Numerical Algorithms 81(2), 575-590.

    Args:
        lb: entries below this are replaced by 1 in the step.
        ub: entries above this are replaced by 1 in the step.
    """

    def __init__(self, lb: float = 1e-2, ub: float = 1e5, init_scale: _Scale = "auto", tol: float = 1e-32,
                 ptol: float | None = 1e-32, ptol_restart: bool = False, gtol: float | None = 1e-32,
                 restart_interval: int | None | Literal["auto"] = None, beta: float | None = None,
                 update_freq: int = 1, scale_first: bool = False, concat_params: bool = True,
                 inner: Chainable | None = None):
        if not lb <= ub:
            raise ValueError(f"lb must not exceed ub, got lb={lb}, ub={ub}")
        super().__init__(dict(lb=lb, ub=ub), init_scale=init_scale, tol=tol, ptol=ptol, ptol_restart=ptol_restart,
                         gtol=gtol, restart_interval=restart_interval, beta=beta, update_freq=update_freq,
                         scale_first=scale_first, concat_params=concat_params, inverse=False, inner=inner)

    def update_B(self, B, s, y, p, g, p_prev, g_prev, state, setting):
        return _weighted_quasi_cauchy(B, s, y, setting["tol"])

    def precondition(self, P, g, state, setting):
        state["bounds"] = (float(setting["lb"]), float(setting["ub"]))
        return g / _safeguard(P, setting["lb"], setting["ub"])

    def _operator(self, P, state):
        lb, ub = state.get("bounds", (-float("inf"), float("inf")))
        return Diagonal(_safeguard(P, lb, ub))


def _safeguard(b: torch.Tensor, lb: float, ub: float) -> torch.Tensor:
    """``b`` with the entries outside ``[lb, ub]`` replaced by 1 (a plain gradient step there)."""
    return torch.where((b < lb) | (b > ub), torch.ones_like(b), b)


class NewDQN(DNRTR):
    """Diagonal quasi-Newton method of Nosrati & Amini (2024).

    ``b+ = b + (s^T y / sum(s^4)) s^2``; entries outside ``[lb, ub]`` are replaced by 1 in the
    step, as in :class:`DNRTR`. Nosrati & Amini (2024), "A new diagonal quasi-Newton algorithm for
    unconstrained optimization problems", Applications of Mathematics 69(4), 501-512.
    """

    def update_B(self, B, s, y, p, g, p_prev, g_prev, state, setting):
        s2 = s * s
        den = float(s2.dot(s2))
        if not abs(den) > setting["tol"] or den == 0:
            return B
        return B.add_(s2, alpha=float(s.dot(y)) / den)
