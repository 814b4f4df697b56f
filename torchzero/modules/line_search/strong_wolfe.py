"""Line search for the strong Wolfe conditions (Nocedal & Wright, 2006, Algorithms 3.5 and 3.6)."""
from __future__ import annotations

import math
from typing import Literal

import torch

from ...core.objective import Objective
from . import interpolation as interp
from .line_search import LineSearchBase, MaxLineSearchItersReached

A_INIT = ("first-order", "quadratic", "quadratic-clip", "previous", "fixed")
INTERPOLATIONS = ("quadratic", "cubic", "bisection", "polynomial", "polynomial2")


class _Failed(Exception):
    pass


class StrongWolfe(LineSearchBase):
    """Interpolation line search for the strong Wolfe conditions.

    With ``phi(a) = f(x - a d)`` it looks for ``a`` with

        phi(a) <= phi(0) + c1 a phi'(0)        and        |phi'(a)| <= c2 |phi'(0)|.

    A bracketing phase tries increasing step sizes (the next one extrapolated by interpolation
    within ``[a + 0.01 (a - a_prev), min(10 a, a_max)]``) until an interval is known to contain
    acceptable points; a zoom phase then shrinks it by interpolation, keeping each trial at least
    10% of the interval away from its ends when progress stalls (Nocedal & Wright, 2006,
    "Numerical Optimization", 2nd ed., Algorithms 3.5 and 3.6; Moré & Thuente, 1994, "Line search
    algorithms with guaranteed sufficient decrease", ACM TOMS 20(3)). Every trial computes a
    gradient. Interpolation runs in double precision on the exact losses and slopes. The zoom keeps its
    bracket when a trial with sufficient decrease and ``phi'(a) (a_hi - a_lo) >= 0`` becomes the low end and
    the old low end the high end, even if that leaves ``a_lo > a_hi``: the bracket still contains
    acceptable points. If ``d`` is not a descent direction (``phi'(0) >= 0``) and ``plus_minus`` is off,
    the search fails at once without evaluating the closure.

    Initial step size (``a_init``, section 3.5 of Nocedal & Wright), with ``f``, ``phi'(0)``, ``a``
    of the previous step marked ``_prev``:

    * ``"fixed"``: ``init_value``;
    * ``"first-order"``: ``a_prev phi'_prev(0) / phi'(0)`` (same first-order change as last step);
    * ``"quadratic"``: ``2 (f - f_prev) / phi'(0)`` (minimizer of a parabola through both losses);
    * ``"quadratic-clip"``: ``min(1, 1.01 * quadratic)``;
    * ``"previous"``: ``a_prev``.

    ``init_value`` is used on the first step and whenever a strategy gives no positive finite value.

    Args:
        c1: sufficient decrease constant.
        c2: curvature constant (0.9 for quasi-Newton, 0.1 for conjugate gradient).
        a_init: initial step size strategy (see above).
        a_max: upper bound of the step sizes tried.
        init_value: initial step size for ``"fixed"`` and fallback of the other strategies.
        maxiter: maximum number of bracketing iterations.
        maxzoom: maximum number of zoom iterations.
        maxeval: maximum number of function evaluations (None: no limit besides the above).
        tol_change: stop when the bracket, measured along ``d`` (``|a_hi - a_lo| max|d|``), is smaller.
        interpolation: ``"cubic"`` (values and slopes at both ends), ``"quadratic"``,
            ``"bisection"``, ``"polynomial"`` (least-squares Hermite polynomial through every
            point of this search) or ``"polynomial2"`` (the same, dropping old points, i.e.
            lowering the degree, when the minimizer falls outside the bracket).
        adaptive: halve the initial step size after a failed search; reset it after a success.
        fallback: when no point satisfies the conditions, use the tried point with the lowest
            loss if it is lower than ``phi(0)`` (otherwise the parameters are left unchanged).
        plus_minus: if ``d`` is not a descent direction (``phi'(0) > 0``), search along ``+d``.

    Example::

        tz.Optimizer(model.parameters(), tz.m.PolakRibiere(), tz.m.StrongWolfe(c2=0.1, a_init="first-order"))
        tz.Optimizer(model.parameters(), tz.m.LBFGS(), tz.m.StrongWolfe())
    """

    def __init__(self, c1: float = 1e-4, c2: float = 0.9,
                 a_init: Literal["first-order", "quadratic", "quadratic-clip", "previous", "fixed"] = "fixed",
                 a_max: float = 1e12, init_value: float = 1, maxiter: int = 25, maxzoom: int = 10,
                 maxeval: int | None = None, tol_change: float = 1e-9,
                 interpolation: Literal["quadratic", "cubic", "bisection", "polynomial", "polynomial2"] = "cubic",
                 adaptive=True, fallback: bool = False, plus_minus=False):
        if not 0 < c1 < c2 < 1:
            raise ValueError(f"need 0 < c1 < c2 < 1, got c1={c1}, c2={c2}")
        if a_init not in A_INIT:
            raise ValueError(f"a_init must be one of {A_INIT}, got {a_init!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        if not a_max > 0 or not init_value > 0:
            raise ValueError("a_max and init_value must be positive")
        if maxiter < 1 or maxzoom < 0:
            raise ValueError(f"maxiter must be >= 1 and maxzoom >= 0, got {maxiter}, {maxzoom}")
        if maxeval is not None and maxeval < 1:
            raise ValueError(f"maxeval must be a positive integer or None, got {maxeval}")
        super().__init__(dict(c1=c1, c2=c2, a_init=a_init, a_max=a_max, init_value=init_value, maxiter=maxiter,
                              maxzoom=maxzoom, maxeval=maxeval, tol_change=tol_change, interpolation=interpolation,
                              adaptive=adaptive, fallback=fallback, plus_minus=plus_minus))

    # ------------------------------------------------------------------ initial step
    def _initial(self, s, f_0: float, g_0: float) -> float:
        gs = self.global_state
        strategy, init_value = s["a_init"], s["init_value"]
        a = None
        if "prev_a" in gs:
            prev_a, prev_f, prev_g = gs["prev_a"], gs["prev_f"], gs["prev_g"]
            if strategy == "first-order" and g_0 != 0:
                a = prev_a * prev_g / g_0
            elif strategy in ("quadratic", "quadratic-clip") and g_0 != 0:
                a = 2 * (f_0 - prev_f) / g_0
                if strategy == "quadratic-clip":
                    a = min(1.0, 1.01 * a)
            elif strategy == "previous":
                a = prev_a
        if a is None or not math.isfinite(a) or a <= 0:
            a = init_value
        a *= gs.get("init_scale", 1.0)
        return min(a, s["a_max"])

    # ------------------------------------------------------------------ search
    def search(self, update: list[torch.Tensor], var: Objective) -> float:
        s = self.settings[var.params[0]]
        f_0, g_0 = self.f_g_0()
        sign = 1.0
        if g_0 > 0 and s["plus_minus"]:
            sign, g_0 = -1.0, -g_0
        a = self._initial(s, f_0, g_0) if g_0 < 0 else 0.0
        d_max = max(float(u.abs().max()) for u in update) if update else 0.0
        self._trials: list[tuple[float, float, float]] = [(0.0, f_0, g_0)]
        result: float | None = None
        if g_0 < 0:
            try:
                result = self._strong_wolfe(s, sign, a, f_0, g_0, d_max)
            except (_Failed, MaxLineSearchItersReached):
                result = None
        if result is None:
            if s["fallback"]:
                finite = [t for t in self._trials[1:] if t[1] < f_0]
                if finite:
                    result = min(finite, key=lambda t: t[1])[0]
            if s["adaptive"]:
                self.global_state["init_scale"] = self.global_state.get("init_scale", 1.0) * 0.5
        else:
            self.global_state["init_scale"] = 1.0
        self._trials = []
        if result is None or result == 0:
            return 0.0
        self.global_state.update(prev_a=result, prev_f=f_0, prev_g=g_0)
        return sign * result

    def _eval(self, s, sign: float, a: float) -> tuple[float, float]:
        maxeval = s["maxeval"]
        if maxeval is not None and len(self._trials) > maxeval:
            raise _Failed
        f, g = self.evaluate_f_d(sign * a)
        g *= sign
        self._trials.append((a, f, g))
        return f, g

    def _strong_wolfe(self, s, sign: float, a: float, f_0: float, g_0: float, d_max: float) -> float | None:
        c1, c2, a_max = s["c1"], s["c2"], s["a_max"]
        a_prev, f_prev, g_prev = 0.0, f_0, g_0
        for i in range(s["maxiter"]):
            f_a, g_a = self._eval(s, sign, a)
            if not math.isfinite(f_a) or f_a > f_0 + c1 * a * g_0 or (i > 0 and f_a >= f_prev):
                return self._zoom(s, sign, (a_prev, f_prev, g_prev), (a, f_a, g_a), f_0, g_0, d_max)
            if abs(g_a) <= -c2 * g_0:
                return a
            if g_a >= 0:
                return self._zoom(s, sign, (a_prev, f_prev, g_prev), (a, f_a, g_a), f_0, g_0, d_max)
            if a >= a_max:
                return None
            lo, hi = a + 0.01 * (a - a_prev), min(10 * a, a_max)
            a_next = self._interpolate(s, (a_prev, f_prev, g_prev), (a, f_a, g_a), lo, hi) if lo < hi else hi
            a_prev, f_prev, g_prev = a, f_a, g_a
            a = a_next
        return None

    def _interpolate(self, s, p1, p2, lo: float, hi: float) -> float:
        method = s["interpolation"]
        if method == "bisection":
            return interp.bisection(lo, hi)
        if method == "cubic" or not all(math.isfinite(v) for v in (*p1, *p2)):
            if not all(math.isfinite(v) for v in (*p1, *p2)):
                return interp.bisection(lo, hi)
            return interp.cubic(*p1, *p2, lo, hi)
        if method == "quadratic":
            return interp.quadratic(p1[0], p1[1], p1[2], p2[0], p2[1], lo, hi)
        pts = [t for t in self._trials if all(math.isfinite(v) for v in t)]
        return interp.polynomial(pts, lo, hi, lower_degree=method == "polynomial2")

    def _zoom(self, s, sign: float, p0, p1, f_0: float, g_0: float, d_max: float) -> float | None:
        """Zoom on the bracket ``[p0, p1]`` (``p0`` the earlier trial); points are ``(a, phi, phi')``.

        The two ends keep their slots while the bracket shrinks, and interpolation always sees them
        in slot order.
        """
        c1, c2 = s["c1"], s["c2"]
        br = [p0, p1]
        lo = 0 if (br[0][1] <= br[1][1] or not math.isfinite(br[1][1])) else 1
        stalled = False
        for _ in range(s["maxzoom"]):
            left, right = min(br[0][0], br[1][0]), max(br[0][0], br[1][0])
            if (right - left) * d_max < s["tol_change"]:
                return None
            t = self._interpolate(s, br[0], br[1], left, right)
            # safeguard: do not creep towards an end of the bracket
            margin = 0.1 * (right - left)
            if min(right - t, t - left) < margin:
                if stalled or t >= right or t <= left:
                    t = right - margin if abs(t - right) < abs(t - left) else left + margin
                    stalled = False
                else:
                    stalled = True
            else:
                stalled = False
            f_t, g_t = self._eval(s, sign, t)
            hi = 1 - lo
            if not math.isfinite(f_t) or f_t > f_0 + c1 * t * g_0 or f_t >= br[lo][1]:
                br[hi] = (t, f_t, g_t)
                if br[hi][1] < br[lo][1]:
                    lo = hi
            else:
                if abs(g_t) <= -c2 * g_0:
                    return t
                if g_t * (br[hi][0] - br[lo][0]) >= 0:
                    br[hi] = br[lo]
                br[lo] = (t, f_t, g_t)
        return None
