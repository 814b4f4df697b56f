"""Backtracking line searches (Armijo, 1966; Nocedal & Wright, 2006, Algorithm 3.1)."""
from __future__ import annotations

import math
import torch

from ...core.objective import Objective
from .line_search import GRADIENT_CONDITIONS, LineSearchBase, TerminationCondition, check_condition, termination_condition


def _check(init: float, beta: float, c: float, maxiter: int) -> None:
    if not init > 0:
        raise ValueError(f"init must be positive, got {init}")
    if not 0 < beta < 1:
        raise ValueError(f"beta must be in (0, 1), got {beta}")
    if c < 0:
        raise ValueError(f"c must be non-negative, got {c}")
    if maxiter < 1:
        raise ValueError(f"maxiter must be at least 1, got {maxiter}")


def backtrack(ls: LineSearchBase, a: float, beta: float, c: float, condition: str, maxiter: int) -> tuple[float | None, int]:
    """Tries ``a, beta a, beta^2 a, ...`` (at most ``maxiter`` evaluations) until ``condition`` holds.

    Stops early, accepting the previous trial, once shrinking the step makes the loss go up again
    after it had already dropped below ``phi(0)``. Returns ``(step size or None on failure,
    number of reductions made before the accepted trial)``.
    """
    f_0, g_0 = ls.f_g_0()
    needs_grad = condition in GRADIENT_CONDITIONS
    a_prev, f_prev = 0.0, math.inf
    for k in range(maxiter):
        if needs_grad:
            f_a, g_a = ls.evaluate_f_d(a)
        else:
            f_a, g_a = ls.evaluate_f(a), None
        if termination_condition(condition, f_0, g_0, f_a, g_a, a, c):
            return a, k
        if k > 0 and f_prev < f_0 and f_a > f_prev:
            return a_prev, k - 1
        a_prev, f_prev = a, f_a
        a *= beta
    return None, maxiter


class Backtracking(LineSearchBase):
    """Backtracking line search.

    Tries ``a = init, beta init, beta^2 init, ...`` along ``x - a d`` and accepts the first step
    size that satisfies ``condition``; by default the Armijo sufficient-decrease condition
    ``f(x - a d) <= f(x) - c a g.d`` (Armijo, 1966, "Minimization of functions having Lipschitz
    continuous first partial derivatives", Pacific J. Math. 16(1); Nocedal & Wright, 2006,
    "Numerical Optimization", Algorithm 3.1). If, once the loss has dropped below ``f(x)``,
    shrinking the step makes it go up again, the previous (better) step is accepted.

    When no step size is accepted within ``maxiter`` evaluations the parameters are not changed;
    with ``adaptive`` the next search then continues from where this one stopped
    (``init beta^maxiter``) instead of starting over from ``init``; the first successful search
    resets it.

    Args:
        init: initial step size.
        beta: factor applied to the step size after each rejected trial.
        c: constant of the condition (sufficient decrease; for the curvature conditions it is also
            the curvature constant, so choose e.g. ``c=0.9`` for ``"curvature"``).
        condition: ``"armijo"``, ``"decrease"`` (any decrease), ``"goldstein"``, or a condition that
            also checks the slope at the trial point (``"curvature"``, ``"strong_curvature"``,
            ``"wolfe"``, ``"strong_wolfe"``; each trial then also computes a gradient).
        maxiter: maximum number of function evaluations per step.
        adaptive: continue decreasing the initial step size after a failed search.

    Example::

        tz.Optimizer(model.parameters(), tz.m.LBFGS(), tz.m.Backtracking())
    """

    def __init__(self, init: float = 1.0, beta: float = 0.5, c: float = 1e-4,
                 condition: TerminationCondition = "armijo", maxiter: int = 10, adaptive=True):
        _check(init, beta, c, maxiter)
        check_condition(condition)
        super().__init__(dict(init=init, beta=beta, c=c, condition=condition, maxiter=maxiter, adaptive=adaptive))

    def search(self, update: list[torch.Tensor], var: Objective) -> float:
        s = self.settings[var.params[0]]
        init, beta, c, condition, maxiter, adaptive = s["init"], s["beta"], s["c"], s["condition"], s["maxiter"], s["adaptive"]
        scale = self.global_state.get("init_scale", 1.0)
        a, _ = backtrack(self, init * scale, beta, c, condition, maxiter)
        if a is None:
            if adaptive:
                self.global_state["init_scale"] = scale * beta ** maxiter
            return 0.0
        self.global_state["init_scale"] = 1.0
        return a


class AdaptiveBacktracking(LineSearchBase):
    """Backtracking line search that adapts its initial step size.

    Each search backtracks like :class:`Backtracking` from ``a0 = init * s``. If the accepted step
    ``a0 beta^k`` needed ``k`` reductions, the next initial step is chosen so that the same step
    would be reached after ``target_iters`` reductions: ``s <- s beta^(k - target_iters)``; when the
    very first trial is accepted (``k = 0``) the scale grows instead, ``s <- nplus s``. With
    ``scale_beta > 0`` the scale moves there with momentum,
    ``s <- scale_beta s + (1 - scale_beta) s_new``. A failed search (no acceptable step in
    ``maxiter`` evaluations) leaves the parameters unchanged and continues from where it stopped:
    ``s <- s beta^maxiter``.

    Args:
        init: initial step size.
        beta: factor applied to the step size after each rejected trial.
        c: constant of the condition (see :class:`Backtracking`).
        condition: acceptance condition (see :class:`Backtracking`).
        maxiter: maximum number of function evaluations per step.
        target_iters: number of reductions the next search is expected to need.
        nplus: growth of the initial step size when the first trial is accepted.
        scale_beta: momentum of the initial step size scale (0 disables it).
    """

    def __init__(self, init: float = 1.0, beta: float = 0.5, c: float = 1e-4,
                 condition: TerminationCondition = "armijo", maxiter: int = 20, target_iters=1, nplus=2.0,
                 scale_beta=0.0):
        _check(init, beta, c, maxiter)
        check_condition(condition)
        if target_iters < 0:
            raise ValueError(f"target_iters must be non-negative, got {target_iters}")
        if nplus <= 0:
            raise ValueError(f"nplus must be positive, got {nplus}")
        if not 0 <= scale_beta < 1:
            raise ValueError(f"scale_beta must be in [0, 1), got {scale_beta}")
        super().__init__(dict(init=init, beta=beta, c=c, condition=condition, maxiter=maxiter,
                              target_iters=target_iters, nplus=nplus, scale_beta=scale_beta))

    def search(self, update: list[torch.Tensor], var: Objective) -> float:
        s = self.settings[var.params[0]]
        init, beta, c, condition, maxiter = s["init"], s["beta"], s["c"], s["condition"], s["maxiter"]
        scale = self.global_state.get("init_scale", 1.0)
        a, k = backtrack(self, init * scale, beta, c, condition, maxiter)
        if a is None:
            self.global_state["init_scale"] = scale * beta ** maxiter
            return 0.0
        new = scale * s["nplus"] if k == 0 else scale * beta ** (k - s["target_iters"])
        sb = s["scale_beta"]
        self.global_state["init_scale"] = sb * scale + (1 - sb) * new
        return a
