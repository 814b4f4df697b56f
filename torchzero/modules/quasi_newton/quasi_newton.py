"""Full-matrix quasi-Newton methods.

Notation used in the docstrings: ``s = x_k - x_{k-1}``, ``y = g_k - g_{k-1}``, ``H`` the inverse
Hessian approximation, ``B`` the Hessian approximation, ``r = s - H y`` (``B`` form: ``r = y - B s``).
Every method keeps an ``n x n`` matrix (O(n^2) memory); a line search or trust region is
recommended after them.
"""
from __future__ import annotations

from typing import Literal

import torch

from ...core.chain import Chainable
from .base import HessianUpdateStrategy, rank1_denominator_ok

__all__ = [
    "HessianUpdateStrategy", "BFGS", "DFP", "SR1", "BroydenGood", "BroydenBad", "Greenstadt1", "Greenstadt2",
    "McCormick", "Pearson", "ICUM", "ThomasOptimalMethod", "Horisho", "FletcherVMM", "PSB", "ShorR",
    "ProjectedNewtonRaphson",
]

_Scale = float | Literal["auto"]


class _QN(HessianUpdateStrategy):
    """Constructor shared by the methods that have a selectable inverse / direct form."""

    _default_inverse = True

    def __init__(self, init_scale: _Scale = "auto", tol: float = 1e-32, ptol: float | None = 1e-32,
                 ptol_restart: bool = False, gtol: float | None = 1e-32, restart_interval: int | None = None,
                 beta: float | None = None, update_freq: int = 1, scale_first: bool = False,
                 concat_params: bool = True, inverse: bool = True, inner: Chainable | None = None):
        super().__init__(None, init_scale=init_scale, tol=tol, ptol=ptol, ptol_restart=ptol_restart, gtol=gtol,
                         restart_interval=restart_interval, beta=beta, update_freq=update_freq,
                         scale_first=scale_first, concat_params=concat_params, inverse=inverse, inner=inner)


def _rank1(P: torch.Tensor, r: torch.Tensor, z: torch.Tensor, y: torch.Tensor, tol: float) -> torch.Tensor:
    """``P + r z^T / (z^T y)``, skipped when ``z^T y`` is too small relative to ``|z| |y|``."""
    zy = z.dot(y)
    if not rank1_denominator_ok(z, y, zy, tol):
        return P
    return P.addr_(r, z, alpha=float(1 / zy))


def _bfgs_inverse(H: torch.Tensor, s: torch.Tensor, y: torch.Tensor, sy: float) -> torch.Tensor:
    # (I - rho s y^T) H (I - rho y s^T) + rho s s^T, expanded:
    # H - rho (s (H^T y)^T + (H y) s^T) + (rho^2 y^T H y + rho) s s^T
    rho = 1.0 / sy
    Hy = H @ y
    yH = y @ H
    yHy = float(y.dot(Hy))
    return H.addr_(Hy, s, alpha=-rho).addr_(s, yH, alpha=-rho).addr_(s, s, alpha=rho * rho * yHy + rho)


def _dfp_inverse(H: torch.Tensor, s: torch.Tensor, y: torch.Tensor, sy: float, tol: float) -> torch.Tensor:
    Hy = H @ y
    yHy = float(y.dot(Hy))
    if abs(yHy) <= tol:
        return H
    return H.addr_(Hy, Hy, alpha=-1 / yHy).addr_(s, s, alpha=1 / sy)


class BFGS(_QN):
    """Broyden-Fletcher-Goldfarb-Shanno quasi-Newton method, usually the most robust one.

    Inverse form: ``H+ = (I - rho s y^T) H (I - rho y s^T) + rho s s^T`` with ``rho = 1 / s^T y``;
    direct form: ``B+ = B - B s s^T B / (s^T B s) + y y^T / (s^T y)``. Both satisfy the secant
    condition and keep the approximation positive definite when ``s^T y > 0``; the update is
    skipped when ``s^T y <= tol``. See Nocedal & Wright, *Numerical Optimization*, 2nd ed., §6.1.
    """

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        sy = float(s.dot(y))
        if not sy > setting["tol"]:
            return H
        return _bfgs_inverse(H, s, y, sy)

    def update_B(self, B, s, y, p, g, p_prev, g_prev, state, setting):
        sy = float(s.dot(y))
        if not sy > setting["tol"]:
            return B
        Bs = B @ s
        sBs = float(s.dot(Bs))
        if abs(sBs) <= setting["tol"]:
            return B
        return B.addr_(Bs, s @ B, alpha=-1 / sBs).addr_(y, y, alpha=1 / sy)


class DFP(_QN):
    """Davidon-Fletcher-Powell quasi-Newton method.

    Inverse form: ``H+ = H - H y y^T H / (y^T H y) + s s^T / (s^T y)``; direct form (the dual of
    inverse BFGS): ``B+ = (I - rho y s^T) B (I - rho s y^T) + rho y y^T``. Skipped when
    ``|s^T y| <= tol``. Davidon (1959), Fletcher & Powell (1963), "A rapidly convergent descent
    method for minimization", The Computer Journal 6(2), doi:10.1093/comjnl/6.2.163.
    """

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        sy = float(s.dot(y))
        if abs(sy) <= setting["tol"]:
            return H
        return _dfp_inverse(H, s, y, sy, setting["tol"])

    def update_B(self, B, s, y, p, g, p_prev, g_prev, state, setting):
        sy = float(s.dot(y))
        if abs(sy) <= setting["tol"]:
            return B
        return _bfgs_inverse(B, y, s, sy)


class SR1(_QN):
    """Symmetric rank-one quasi-Newton method.

    Inverse form ``H+ = H + r r^T / (r^T y)`` with ``r = s - H y``; direct form
    ``B+ = B + r r^T / (r^T s)`` with ``r = y - B s``. The update is skipped unless
    ``|r^T y| > tol |r| |y|`` (Nocedal & Wright, *Numerical Optimization*, 2nd ed., eq. 6.26), with
    ``tol`` raised to ``8 eps`` of the dtype: a smaller denominator is rounding noise. The first
    update after the ``init_scale="auto"`` rescaling is skipped: from ``H = (s^T y / y^T y) I``
    (``B = (y^T y / s^T y) I``) the rule divides by an exact zero (gives a singular ``B``). The
    approximation may become indefinite, which is why SR1 works best with a trust region, e.g.
    ``tz.m.TrustCG(hess_module=tz.m.SR1(inverse=False))``.
    """

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        if self._just_scaled:
            return H
        r = s - H @ y
        return _rank1(H, r, r, y, max(setting["tol"], 8 * torch.finfo(H.dtype).eps))

    def update_B(self, B, s, y, p, g, p_prev, g_prev, state, setting):
        if self._just_scaled:
            return B
        r = y - B @ s
        return _rank1(B, r, r, s, max(setting["tol"], 8 * torch.finfo(B.dtype).eps))


class BroydenGood(_QN):
    """Broyden's "good" method (Broyden, 1965), a non-symmetric rank-one secant update.

    Inverse form ``H+ = H + r (H^T s)^T / (s^T H y)`` with ``r = s - H y`` (the inverse of the
    least-change update of ``B``); direct form ``B+ = B + (y - B s) s^T / (s^T s)``. As catalogued
    in Spedicato & Huang (1997), "Numerical experience with Newton-like methods for nonlinear
    algebraic systems", Computing 58(1), 69-89, doi:10.1007/bf02684472.
    """

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        return _rank1(H, s - H @ y, s @ H, y, setting["tol"])

    def update_B(self, B, s, y, p, g, p_prev, g_prev, state, setting):
        return _rank1(B, y - B @ s, s, s, setting["tol"])


class BroydenBad(_QN):
    """Broyden's "bad" method: the least-change rank-one update of the inverse.

    Inverse form ``H+ = H + (s - H y) y^T / (y^T y)``; direct form ``B+ = B + (y - B s) y^T / (y^T s)``.
    Spedicato & Huang (1997), "Numerical experience with Newton-like methods for nonlinear
    algebraic systems", Computing 58(1), 69-89, doi:10.1007/bf02684472.
    """

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        return _rank1(H, s - H @ y, y, y, setting["tol"])

    def update_B(self, B, s, y, p, g, p_prev, g_prev, state, setting):
        return _rank1(B, y - B @ s, y, s, setting["tol"])


class Greenstadt1(_QN):
    """Greenstadt's first method: ``H+ = H + (s - H y) g^T / (g^T y)``.

    A rank-one secant update of the inverse whose free direction is the current gradient
    (the residual of the nonlinear system). Spedicato & Huang (1997), "Numerical experience with
    Newton-like methods for nonlinear algebraic systems", Computing 58(1), 69-89,
    doi:10.1007/bf02684472.
    """

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        return _rank1(H, s - H @ y, g, y, setting["tol"])


class Greenstadt2(_QN):
    """Greenstadt's second method: ``H+ = H + (s - H y) z^T / (z^T y)`` with ``z = H H y``.

    Spedicato & Huang (1997), "Numerical experience with Newton-like methods for nonlinear
    algebraic systems", Computing 58(1), 69-89, doi:10.1007/bf02684472.
    """

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        Hy = H @ y
        return _rank1(H, s - Hy, H @ Hy, y, setting["tol"])


class McCormick(_QN):
    """McCormick's method: ``H+ = H + (s - H y) s^T / (s^T y)``.

    Pearson (1969), "Variable metric methods of minimisation", The Computer Journal 12(2),
    171-178, doi:10.1093/comjnl/12.2.171: "Algorithm 2", attributed there to McCormick (also
    known as Pearson's second method).
    """

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        return _rank1(H, s - H @ y, s, y, setting["tol"])


class Pearson(_QN):
    """Pearson's method: ``H+ = H + (s - H y) (H y)^T / (y^T H y)``.

    Pearson (1969), "Variable metric methods of minimisation", The Computer Journal 12(2),
    171-178, doi:10.1093/comjnl/12.2.171.
    """

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        Hy = H @ y
        return _rank1(H, s - Hy, Hy, y, setting["tol"])


class ICUM(_QN):
    """Inverse column-updating method: only one column of ``H`` changes per step.

    ``H+ = H + (s - H y) e_j^T / y_j`` where ``j = argmax_i |y_i|``, which makes it cheaper than
    the other updates. Lopes & Martínez (1995), "Convergence properties of the inverse
    column-updating method", Optimization Methods & Software 6(2), 127-144.
    """

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        j = int(y.abs().argmax())
        yj = float(y[j])
        if abs(yj) <= setting["tol"] or yj == 0:
            return H
        H[:, j].add_(s - H @ y, alpha=1 / yj)
        return H


class ThomasOptimalMethod(_QN):
    """Thomas's "optimal" rank-one update, which also tracks a matrix ``R`` bounding the error.

    With ``sigma = |s|`` and ``M = R + (sigma / 2) I``::

        H+ = H + (s - H y) (H^T M s)^T / ((H^T M s)^T y)
        R+ = (1 + sigma) (M - M s s^T M / (s^T M s) + (sigma / 2) I)

    starting from ``R = I`` (so the first update is Broyden's good update). ``R`` describes the
    set in which the error of the approximation lies; the update minimises a bound on its size.
    Thomas (1975), *Sequential estimation techniques for quasi-Newton algorithms*, PhD thesis,
    Cornell University.
    """

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        R = state.get("R")
        if R is None:
            R = state["R"] = torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
        half = float(s.norm()) / 2
        M = R.clone()
        M.diagonal().add_(half)
        Ms = M @ s
        sMs = float(s.dot(Ms))
        if sMs == 0:
            return H
        R.copy_(M).addr_(Ms, Ms, alpha=-1 / sMs)
        R.diagonal().add_(half)
        R.mul_(1 + 2 * half)
        return _rank1(H, s - H @ y, Ms @ H, y, setting["tol"])


class Horisho(_QN):
    """Hoshino's variable metric method: the Broyden-class member with ``phi = s^T y / (s^T y + y^T H y)``.

    ``H+ = H_DFP + phi (y^T H y) v v^T`` with ``v = s / (s^T y) - H y / (y^T H y)`` (``phi = 1``
    would be BFGS, ``phi = 0`` DFP); symmetric in ``s`` and ``y`` by construction. Hoshino (1972),
    "A formulation of variable metric methods", IMA Journal of Applied Mathematics 10(3),
    394-403, doi:10.1093/imamat/10.3.394.
    """

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        tol = setting["tol"]
        sy = float(s.dot(y))
        Hy = H @ y
        yHy = float(y.dot(Hy))
        if abs(sy) <= tol or abs(yHy) <= tol or sy + yHy == 0:
            return H
        phi = sy / (sy + yHy)
        v = s / sy - Hy / yHy
        H = _dfp_inverse(H, s, y, sy, tol)
        return H.addr_(v, v, alpha=phi * yHy)


class FletcherVMM(_QN):
    """Fletcher's variable metric method (1970).

    Fletcher derived the update ``H+ = H - (s y^T H + H y s^T) / (s^T y) + (1 + y^T H y / s^T y) s s^T / (s^T y)``
    from the convex class between DFP and this formula, and used it in his variable metric
    method; it is the inverse BFGS formula (the "F" of BFGS), written here in Fletcher's form.
    Skipped when ``|s^T y| <= tol``. Fletcher (1970), "A new approach to variable metric
    algorithms", The Computer Journal 13(3), 317-322, doi:10.1093/comjnl/13.3.317.
    """

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        sy = float(s.dot(y))
        if abs(sy) <= setting["tol"]:
            return H
        return _bfgs_inverse(H, s, y, sy)


class PSB(_QN):
    """Powell's symmetric Broyden update of the Hessian (direct form only).

    With ``r = y - B s``: ``B+ = B + (r s^T + s r^T) / (s^T s) - (r^T s) s s^T / (s^T s)^2``, the
    symmetric least-change (Frobenius norm) secant update. Powell (1970); Spedicato & Huang (1997),
    "Numerical experience with Newton-like methods for nonlinear algebraic systems", Computing
    58(1), 69-89, doi:10.1007/bf02684472.
    """

    def __init__(self, init_scale: _Scale = "auto", tol: float = 1e-32, ptol: float | None = 1e-32,
                 ptol_restart: bool = False, gtol: float | None = 1e-32, restart_interval: int | None = None,
                 beta: float | None = None, update_freq: int = 1, scale_first: bool = False,
                 concat_params: bool = True, inverse: bool = False, inner: Chainable | None = None):
        super().__init__(init_scale=init_scale, tol=tol, ptol=ptol, ptol_restart=ptol_restart, gtol=gtol,
                         restart_interval=restart_interval, beta=beta, update_freq=update_freq,
                         scale_first=scale_first, concat_params=concat_params, inverse=inverse, inner=inner)

    def update_B(self, B, s, y, p, g, p_prev, g_prev, state, setting):
        ss = s.dot(s)
        if not rank1_denominator_ok(s, s, ss, setting["tol"]):
            return B
        ss = float(ss)
        r = y - B @ s
        return B.addr_(r, s, alpha=1 / ss).addr_(s, r, alpha=1 / ss).addr_(s, s, alpha=-float(r.dot(s)) / ss ** 2)


# ---------------------------------------------------------------------- inverse-only methods without an `inverse` argument
class _NoInverseArg(HessianUpdateStrategy):
    """Constructor of the inverse-only methods whose signature has no ``inverse`` argument."""

    def _init(self, defaults, init_scale, tol, ptol, ptol_restart, gtol, restart_interval, beta, update_freq,
              scale_first, concat_params, inner, uses_loss=False):
        HessianUpdateStrategy.__init__(self, defaults, init_scale=init_scale, tol=tol, ptol=ptol,
                                       ptol_restart=ptol_restart, gtol=gtol, restart_interval=restart_interval,
                                       beta=beta, update_freq=update_freq, scale_first=scale_first,
                                       concat_params=concat_params, inverse=True, uses_loss=uses_loss, inner=inner)


class ShorR(_NoInverseArg):
    """Shor's r-algorithm (space dilation in the direction of the gradient difference).

    In the form of Skokov (1974), on ``H = B B^T`` directly:
    ``H+ = H - (1 - alpha^2) H y y^T H / (y^T H y)``, which dilates space by ``1/alpha`` along
    ``B^T y``. Like conjugate gradient it has no natural step length: use a line search that
    overshoots a little, e.g. ``[tz.m.StrongWolfe(a_init="quadratic", fallback=True), tz.m.Mul(1.2)]``.
    Shor (1970), Kibernetika 1, 6-12; Burke, Lewis & Overton (2008), "The speed of Shor's
    r-algorithm", IMA Journal of Numerical Analysis 28(4), 711-720.
    """

    def __init__(self, alpha: float = 0.5, init_scale: _Scale = 1, tol: float = 1e-32, ptol: float | None = 1e-32,
                 ptol_restart: bool = False, gtol: float | None = 1e-32,
                 restart_interval: int | None | Literal["auto"] = None, beta: float | None = None,
                 update_freq: int = 1, scale_first: bool = False, concat_params: bool = True,
                 inner: Chainable | None = None):
        self._init(dict(alpha=alpha), init_scale, tol, ptol, ptol_restart, gtol, restart_interval, beta, update_freq,
                   scale_first, concat_params, inner)

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        Hy = H @ y
        yHy = float(y.dot(Hy))
        if not rank1_denominator_ok(y, Hy, yHy, setting["tol"]):
            return H
        return H.addr_(Hy, Hy, alpha=-(1 - setting["alpha"] ** 2) / yHy)


class ProjectedNewtonRaphson(_NoInverseArg):
    """Projected Newton-Raphson method (Pearson's "Algorithm 7").

    ``H`` is projected so that it annihilates the gradient differences seen so far, while a second
    matrix ``R`` (starting from ``I``) accumulates curvature with a Pearson-type update::

        H+ = H - (H y) (H y)^T / (y^T H y)
        R+ = R + (s - R y) (H y)^T / (y^T H y)

    After ``n`` updates ``H`` vanishes on a quadratic, so every ``restart_interval`` updates
    (``"auto"``: ``n + 1``) ``H`` is restarted from ``R``. Pearson (1969), "Variable metric methods of
    minimisation", The Computer Journal 12(2), 171-178, doi:10.1093/comjnl/12.2.171.
    """

    def __init__(self, init_scale: _Scale = "auto", tol: float = 1e-32, ptol: float | None = 1e-32,
                 ptol_restart: bool = False, gtol: float | None = 1e-32,
                 restart_interval: int | None | Literal["auto"] = "auto", beta: float | None = None,
                 update_freq: int = 1, scale_first: bool = False, concat_params: bool = True,
                 inner: Chainable | None = None):
        self._init(None, init_scale, tol, ptol, ptol_restart, gtol, restart_interval, beta, update_freq,
                   scale_first, concat_params, inner)

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        R = state.get("R")
        if R is None:
            R = state["R"] = torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
        Hy = H @ y
        yHy = float(y.dot(Hy))
        if not rank1_denominator_ok(y, Hy, yHy, setting["tol"]):
            return H
        R.addr_(s - R @ y, Hy, alpha=1 / yHy)
        return H.addr_(Hy, Hy, alpha=-1 / yHy)

    def reset_P(self, P, s, y, init_scale, state):
        R = state.get("R")
        if R is None:
            super().reset_P(P, s, y, init_scale, state)
        else:
            P.copy_(R)
