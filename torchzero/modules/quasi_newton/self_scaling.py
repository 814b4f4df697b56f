"""Self-scaling full-matrix quasi-Newton methods: SSVM (Oren & Spedicato) and NewSSM (Moghrabi et al.).

Notation as in :mod:`.quasi_newton`: ``s = x_k - x_{k-1}``, ``y = g_k - g_{k-1}``, ``H`` the inverse
Hessian approximation before the update, ``omega = s'y``, ``tau = y'Hy``.
"""
from __future__ import annotations

import math
from typing import Literal

import torch

from ...core.chain import Chainable
from .quasi_newton import _NoInverseArg, _Scale

__all__ = ["SSVM", "NewSSM"]

_SWITCHES = (1, 2, 3, 4)


def _check_switch(switch) -> None:
    if isinstance(switch, (tuple, list)):
        if len(switch) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in switch):
            raise ValueError(f"switch must be 1, 2, 3, 4 or a pair of numbers (phi, theta), got {switch!r}")
        return
    if isinstance(switch, bool) or switch not in _SWITCHES:
        raise ValueError(f"switch must be 1, 2, 3, 4 or a pair of numbers (phi, theta), got {switch!r}")


def _ssvm_parameters(switch, omega: float, tau: float, eps: float) -> tuple[float, float]:
    """``(phi, theta)`` of the SSVM update for the given switching rule."""
    if isinstance(switch, (tuple, list)):
        return float(switch[0]), float(switch[1])
    if switch == 2:
        if eps < 0:
            return math.nan, math.nan
        root = math.sqrt(eps * tau)
        return math.sqrt(eps / tau), omega / (omega + root)
    if switch == 4:
        return eps / tau, 0.5
    # switches 1 and 3: DFP end, BFGS end, or the optimally conditioned member in between
    if eps / omega < 1:
        return eps / omega, 0.0
    if omega / tau >= 1:
        return omega / tau, 1.0
    num = omega * (eps - omega) if switch == 1 else omega * (tau - omega)
    return 1.0, num / (eps * tau - omega * omega)


class SSVM(_NoInverseArg):
    """Self-scaling variable metric method (Oren & Spedicato, 1976).

    The two-parameter SSVM family rescales ``H`` by ``gamma`` before a Broyden-class update of
    parameter ``theta`` (``theta = 0``: DFP, ``theta = 1``: BFGS)::

        H+ = gamma (H - H y y'H / tau + theta v v') + s s' / omega,
        v  = sqrt(tau) (s / omega - H y / tau),

    which satisfies the secant condition ``H+ y = s`` and stays positive definite for
    ``omega > 0``, ``gamma > 0`` and ``0 <= theta <= 1``. The scale is interpolated between the
    two ends of the Oren-Luenberger interval, ``gamma = (1 - phi) omega / tau + phi eps``, where
    ``eps = g'_k s / g'_k H y`` is the computable estimate of ``s'H^-1 s / omega`` (the step
    length under exact line searches; ``g_k`` the current gradient).

    ``switch`` chooses ``(phi, theta)``; the rules below are written with ``eps`` standing for the
    paper's ``sigma`` (the form in which torchzero 0.4.4 evaluates them; our numbers follow it):

    * ``1`` and ``3`` (Oren-Spedicato switching): if ``eps / omega < 1`` the DFP end
      (``theta = 0``, ``phi = eps / omega``); otherwise if ``omega / tau >= 1`` the BFGS end
      (``theta = 1``, ``phi = omega / tau``); otherwise ``phi = 1`` (``gamma = eps``) with the
      optimally conditioned ``theta = omega (eps - omega) / (eps tau - omega^2)`` (``1``) or
      ``theta = omega (tau - omega) / (eps tau - omega^2)`` (``3``);
    * ``2``: ``phi = sqrt(eps / tau)``, ``theta = omega / (omega + sqrt(eps tau))``;
    * ``4``: ``phi = eps / tau``, ``theta = 1/2``;
    * a pair ``(phi, theta)`` fixes both.

    The update is skipped when ``omega <= tol`` or ``tau <= tol``, and when the rule gives a
    non-finite or non-positive ``gamma`` (e.g. ``switch=2`` with ``eps < 0``, where the square root
    does not exist), since ``H+`` would then not be positive definite.

    A line search is recommended (``tz.m.StrongWolfe()``); O(n^2) memory.

    Oren, S. S. & Spedicato, E. (1976). Optimal conditioning of self-scaling variable metric
    algorithms. Mathematical Programming 10(1), 70-90. doi:10.1007/bf01580654.
    """

    def __init__(self, switch: tuple[float, float] | Literal[1, 2, 3, 4] = 3, init_scale: _Scale = "auto",
                 tol: float = 1e-32, ptol: float | None = 1e-32, ptol_restart: bool = False,
                 gtol: float | None = 1e-32, restart_interval: int | None = None, beta: float | None = None,
                 update_freq: int = 1, scale_first: bool = False, concat_params: bool = True,
                 inner: Chainable | None = None):
        _check_switch(switch)
        self._init(dict(switch=switch), init_scale, tol, ptol, ptol_restart, gtol, restart_interval, beta,
                   update_freq, scale_first, concat_params, inner)

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        tol = setting["tol"]
        Hy = H @ y
        omega = float(s.dot(y))
        tau = float(y.dot(Hy))
        if not (omega > tol and tau > tol):
            return H
        gHy = float(g.dot(Hy))
        floor = 2 * torch.finfo(H.dtype).tiny
        if abs(gHy) < floor:
            gHy = floor
        eps = float(g.dot(s)) / gHy
        phi, theta = _ssvm_parameters(setting["switch"], omega, tau, eps)
        gamma = (1 - phi) * omega / tau + phi * eps
        if not (math.isfinite(gamma) and math.isfinite(theta) and gamma > 0):
            return H
        # gamma (H - Hy Hy'/tau + theta v v') + s s'/omega with v v' expanded
        H.mul_(gamma)
        H.addr_(Hy, Hy, alpha=gamma * (theta - 1) / tau)
        H.addr_(s, s, alpha=gamma * theta * tau / omega ** 2 + 1 / omega)
        c = -gamma * theta / omega
        return H.addr_(s, Hy, alpha=c).addr_(Hy, s, alpha=c)


class NewSSM(_NoInverseArg):
    """Self-scaling quasi-Newton method of Moghrabi, Hassan & Askar (2022).

    BFGS applied to the pair ``(s, psi y)``, whose scale ``psi`` comes from the decrease of the
    objective ``df = f_{k-1} - f_k``::

        H+ = H - (s (Hy)' + Hy s') / omega + (1 / (psi omega) + tau / omega^2) s s'

    so that ``H+ (psi y) = s``. ``type`` selects the scale:

    * ``1``: ``psi = 2 (omega - df) / omega`` (``psi = 1``, plain BFGS, on a quadratic with an
      exact line search, where ``df = omega / 2``);
    * ``2``: ``psi = 1 / (2 omega^2) + df / omega`` (in the form torchzero 0.4.4 evaluates it; our
      numbers follow it).

    The update is skipped unless ``omega > tol`` and ``psi omega > tol`` (the BFGS curvature
    condition for the scaled pair, which keeps ``H`` positive definite). Needs the loss, so the
    optimizer must be stepped with a closure; a line search such as ``tz.m.StrongWolfe()`` is
    required. O(n^2) memory.

    Moghrabi, I. A., Hassan, B. A. & Askar, A. (2022). New self-scaling quasi-Newton methods for
    unconstrained optimization. Int. J. Math. Comput. Sci. 17, 1061-1077.
    """

    def __init__(self, type: Literal[1, 2] = 1, init_scale: _Scale = "auto", tol: float = 1e-32,  # noqa: A002
                 ptol: float | None = 1e-32, ptol_restart: bool = False, gtol: float | None = 1e-32,
                 restart_interval: int | None = None, beta: float | None = None, update_freq: int = 1,
                 scale_first: bool = False, concat_params: bool = True, inner: Chainable | None = None):
        if isinstance(type, bool) or type not in (1, 2):
            raise ValueError(f"type must be 1 or 2, got {type!r}")
        self._init(dict(type=type), init_scale, tol, ptol, ptol_restart, gtol, restart_interval, beta,
                   update_freq, scale_first, concat_params, inner, uses_loss=True)

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        tol = setting["tol"]
        omega = float(s.dot(y))
        f, f_prev = state.get("f"), state.get("f_prev")
        if not omega > tol or f is None or f_prev is None:
            return H
        df = float(f_prev) - float(f)
        if setting["type"] == 1:
            psi = 2 * (omega - df) / omega
        else:
            psi = 0.5 / omega ** 2 + df / omega
        if not (math.isfinite(psi) and psi * omega > tol):
            return H
        Hy = H @ y
        tau = float(y.dot(Hy))
        H.addr_(s, Hy, alpha=-1 / omega).addr_(Hy, s, alpha=-1 / omega)
        return H.addr_(s, s, alpha=1 / (psi * omega) + tau / omega ** 2)
