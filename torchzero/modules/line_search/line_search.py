"""The base class of line searches and the acceptance conditions they share.

A line search receives a search direction ``d`` (the update, which is *subtracted* from the
parameters) and looks for a step size ``a`` along the ray ``x(a) = x - a d``. Along that ray

    phi(a) = f(x - a d),        phi'(a) = -grad f(x - a d) . d,

so ``phi'(0) < 0`` when ``d`` is a descent direction. Conditions (Nocedal & Wright, 2006,
"Numerical Optimization", 2nd ed., section 3.1), with constants ``0 < c1 < c2 < 1``:

* armijo (sufficient decrease): ``phi(a) <= phi(0) + c1 a phi'(0)``;
* curvature: ``phi'(a) >= c2 phi'(0)``;
* strong curvature: ``|phi'(a)| <= c2 |phi'(0)|``;
* wolfe = armijo + curvature, strong_wolfe = armijo + strong curvature;
* goldstein: ``phi(0) + (1 - c) a phi'(0) <= phi(a) <= phi(0) + c a phi'(0)`` (``0 < c < 1/2``);
* decrease: ``phi(a) < phi(0)``.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch

from ...core.module import Module
from ...core.objective import Objective
from ...utils.foreach import scalar_or_list

TerminationCondition = Literal["armijo", "curvature", "strong_curvature", "wolfe", "strong_wolfe", "goldstein", "decrease"]
CONDITIONS: tuple[str, ...] = ("armijo", "curvature", "strong_curvature", "wolfe", "strong_wolfe", "goldstein", "decrease")
GRADIENT_CONDITIONS: tuple[str, ...] = ("curvature", "strong_curvature", "wolfe", "strong_wolfe")
"""conditions that need ``phi'(a)``, i.e. a gradient at the trial point."""


def check_condition(condition: str) -> str:
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
    return condition


def termination_condition(condition: str, f_0: float, g_0: float, f_a: float, g_a: float | None, a: float,
                          c: float, c2: float | None = None) -> bool:
    """Whether the trial step ``a`` with ``phi(a) = f_a`` and ``phi'(a) = g_a`` is acceptable.

    ``g_0 = phi'(0)``. ``c`` is the sufficient-decrease constant; ``c2`` the curvature constant
    (``c`` when not given).
    """
    if c2 is None:
        c2 = c
    if not math.isfinite(f_a):
        return False
    if condition == "armijo":
        return f_a <= f_0 + c * a * g_0
    if condition == "decrease":
        return f_a < f_0
    if condition == "goldstein":
        return f_0 + (1 - c) * a * g_0 <= f_a <= f_0 + c * a * g_0
    if g_a is None:
        raise ValueError(f"condition {condition!r} needs the directional derivative at the trial point")
    if condition == "curvature":
        return g_a >= c2 * g_0
    if condition == "strong_curvature":
        return abs(g_a) <= c2 * abs(g_0)
    if condition == "wolfe":
        return f_a <= f_0 + c * a * g_0 and g_a >= c2 * g_0
    if condition == "strong_wolfe":
        return f_a <= f_0 + c * a * g_0 and abs(g_a) <= c2 * abs(g_0)
    raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")


def dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    """``sum_i <a_i, b_i>`` as a Python float (one synchronisation)."""
    if len(a) == 1:
        return float(torch.dot(a[0].reshape(-1), b[0].reshape(-1)))
    return float(torch.stack([torch.dot(x.reshape(-1), y.reshape(-1)) for x, y in zip(a, b)]).sum())


class MaxLineSearchItersReached(Exception):
    """Raised inside :meth:`LineSearchBase.search` when the evaluation budget ``maxiter`` is spent."""


class _Search:
    """Scratch data of one line search (never stored in state)."""

    __slots__ = ("objective", "params", "d", "a_cur", "nevals", "maxiter", "best_a", "best_f", "f_0", "g_0", "x0")

    def __init__(self, objective: Objective, d: list[torch.Tensor], maxiter: int | None):
        self.objective = objective
        self.params = objective.params
        self.d = d
        self.a_cur = 0.0
        self.nevals = 0
        self.maxiter = maxiter
        self.best_a = 0.0
        self.best_f = math.inf
        self.f_0: float | None = None
        self.g_0: float | None = None
        self.x0: list[torch.Tensor] | None = None


def _to_float(loss: Any) -> float:
    if isinstance(loss, torch.Tensor):
        return float(loss.detach())
    return float(loss)


class LineSearchBase(Module, ABC):
    """Base class for line searches.

    A subclass implements :meth:`search`, which returns the step size ``a``; the update ``d``
    becomes ``a d``. When the line search is the last module of the optimizer (or the last before
    an ``LR``), the parameters are left at ``x - a d`` directly and no extra pass over them is made.

    Inside :meth:`search` the objective along the ray is evaluated with :meth:`evaluate_f`
    (``phi(a)``), :meth:`evaluate_f_d` (``phi(a), phi'(a)``) and :meth:`evaluate_f_d_g` (also the
    gradient), or through the functions of :meth:`make_objective` and friends, which can be handed
    to a scalar solver. Each of them calls the closure exactly once. ``phi(0)`` and ``phi'(0)`` come
    from the objective's loss and gradient (:meth:`f_0`, :meth:`g_0`) and cost nothing extra when
    the gradient was already computed.

    Args:
        defaults: default settings of the subclass.
        maxiter: if given, the search is stopped after this many evaluations and the step size
            with the lowest loss found so far is used (useful with external solvers that have no
            evaluation limit).
    """

    def __init__(self, defaults: dict[str, Any] | None, maxiter: int | None = None):
        super().__init__(defaults)
        if maxiter is not None and maxiter < 1:
            raise ValueError(f"maxiter must be a positive integer or None, got {maxiter}")
        self._maxiter = maxiter
        self._search: _Search | None = None

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def search(self, update: list[torch.Tensor], var: Objective) -> float:
        """Finds the step size along ``-update`` and returns it (0 to not move)."""

    # ------------------------------------------------------------------ evaluation
    def _ctx(self) -> _Search:
        if self._search is None:
            raise RuntimeError("line search evaluations are only available inside search()")
        return self._search

    def _move_to(self, a: float) -> None:
        """Puts the parameters at ``x0 - a d`` (computed from a saved copy of ``x0``, so the points
        are exact and the parameters are restored bit for bit)."""
        ctx = self._ctx()
        if a == ctx.a_cur:
            return
        with torch.no_grad():
            if ctx.x0 is None:
                ctx.x0 = [p.detach().clone() for p in ctx.params]
            if a == 0:
                torch._foreach_copy_(ctx.params, ctx.x0)
            else:
                for p, x, d in zip(ctx.params, ctx.x0, ctx.d):
                    torch.add(x, d, alpha=-a, out=p)
        ctx.a_cur = a

    def _evaluate(self, step_size: float, backward: bool) -> float:
        ctx = self._ctx()
        if step_size == 0 and ctx.f_0 is not None and (not backward or ctx.g_0 is not None):
            return ctx.f_0  # phi(0) is known: no closure call
        if ctx.maxiter is not None and ctx.nevals >= ctx.maxiter:
            raise MaxLineSearchItersReached
        a = float(step_size)
        self._move_to(a)
        ctx.nevals += 1
        loss = _to_float(ctx.objective.get_loss(backward, at_x0=False))
        if loss < ctx.best_f:
            ctx.best_f, ctx.best_a = loss, a
        return loss

    def _directional(self) -> tuple[float, list[torch.Tensor]]:
        ctx = self._ctx()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in ctx.params]
        return -dot(grads, ctx.d), grads

    def evaluate_f(self, step_size: float, var: Objective | None = None, backward: bool = False) -> float:
        """``phi(step_size) = f(x - step_size * d)`` (one closure call)."""
        return self._evaluate(step_size, backward)

    def evaluate_f_d(self, step_size: float, var: Objective | None = None) -> tuple[float, float]:
        """``phi(step_size)`` and the directional derivative ``phi'(step_size)`` (one closure call with backward)."""
        ctx = self._ctx()
        if step_size == 0 and ctx.f_0 is not None and ctx.g_0 is not None:
            return ctx.f_0, ctx.g_0
        f = self._evaluate(step_size, True)
        return f, self._directional()[0]

    def evaluate_f_d_g(self, step_size: float, var: Objective | None = None) -> tuple[float, float, list[torch.Tensor]]:
        """``phi(step_size)``, ``phi'(step_size)`` and the gradient at ``x - step_size * d``."""
        ctx = self._ctx()
        if step_size == 0 and ctx.f_0 is not None and ctx.g_0 is not None:
            return ctx.f_0, ctx.g_0, ctx.objective.get_grads()
        f = self._evaluate(step_size, True)
        g_a, grads = self._directional()
        return f, g_a, grads

    # older name used in the seed's examples
    def evaluate_step_size(self, step_size: float, var: Objective | None = None, backward: bool = False) -> float:
        return self.evaluate_f(step_size, var, backward)

    def make_objective(self, var: Objective | None = None, backward: bool = False) -> Callable[[float], float]:
        """A function ``a -> phi(a)`` for scalar solvers."""
        return lambda a: self.evaluate_f(float(a), var, backward)

    def make_objective_with_derivative(self, var: Objective | None = None) -> Callable[[float], tuple[float, float]]:
        """A function ``a -> (phi(a), phi'(a))``."""
        return lambda a: self.evaluate_f_d(float(a), var)

    def make_objective_with_derivative_and_gradient(self, var: Objective | None = None):
        """A function ``a -> (phi(a), phi'(a), gradient)``."""
        return lambda a: self.evaluate_f_d_g(float(a), var)

    def f_0(self, var: Objective | None = None) -> float:
        """``phi(0)``, the loss at the current parameters (cached by the objective)."""
        ctx = self._ctx()
        if ctx.f_0 is None:
            self._move_to(0.0)
            ctx.f_0 = _to_float(ctx.objective.get_loss(False))
            if ctx.f_0 < ctx.best_f:
                ctx.best_f, ctx.best_a = ctx.f_0, 0.0
        return ctx.f_0

    def g_0(self, var: Objective | None = None) -> float:
        """``phi'(0) = -g . d`` with the gradient at the current parameters."""
        ctx = self._ctx()
        if ctx.g_0 is None:
            self._move_to(0.0)
            grads = ctx.objective.get_grads()
            ctx.g_0 = -dot(grads, ctx.d)
        return ctx.g_0

    def f_g_0(self, var: Objective | None = None) -> tuple[float, float]:
        """``phi(0)`` and ``phi'(0)`` (one closure call with backward if neither is known yet)."""
        g = self.g_0(var)
        return self.f_0(var), g

    @property
    def num_evaluations(self) -> int:
        """Closure calls made by the current search."""
        return self._ctx().nevals

    # ------------------------------------------------------------------ stepping
    def apply(self, objective: Objective) -> Objective:
        d = objective.get_updates()
        ctx = self._search = _Search(objective, d, self._maxiter)
        try:
            try:
                a = self.search(d, objective)
            except MaxLineSearchItersReached:
                a = ctx.best_a
            a = float(a)
            if not math.isfinite(a):
                a = 0.0
            self.global_state["step_size"] = a
            params = objective.params
            if objective.is_last and not objective.skip_update:
                lrs = objective.last_module_lrs
                lr = 1.0 if lrs is None else scalar_or_list(lrs)
                if isinstance(lr, list):
                    self._move_to(0.0)
                    with torch.no_grad():
                        torch._foreach_add_(params, torch._foreach_mul(d, [-a * l for l in lr]))
                else:
                    self._move_to(a * lr)
                objective.skip_update = True
                objective.stop = True
                return objective
            self._move_to(0.0)
            if a != 1.0:
                torch._foreach_mul_(d, a)
            objective.set_updates(d, owned=True)
            return objective
        finally:
            self._search = None

    def __getstate__(self) -> dict[str, Any]:
        d = super().__getstate__()
        d["_search"] = None
        return d
