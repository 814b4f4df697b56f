"""The trust-region framework shared by Levenberg-Marquardt, dogleg, Steihaug CG and cubic regularization.

Around the current point ``x`` with loss ``f``, gradient ``g`` and a Hessian approximation ``B``
(taken from a child module through ``get_H``), a trust-region method minimises the quadratic model

    m(d) = f - g^T d + 1/2 d^T B d            (the step is x -> x - d)

over a region of radius ``r`` (or with a penalty controlled by ``r``), then compares the actual
reduction with the one the model predicted:

    rho = (f - f(x - d)) / (g^T d - 1/2 d^T B d).

The step is accepted when ``rho > eta``; ``r`` shrinks when ``rho`` is poor and grows when the
model was accurate. See Nocedal & Wright (2006), "Numerical Optimization", 2nd ed., chapter 4,
and Conn, Gould & Toint (2000), "Trust-Region Methods", SIAM, doi:10.1137/1.9780898719857.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

import torch

from ...core.chain import Chainable
from ...core.module import Module
from ...core.objective import Objective
from ...linalg import LinearOperator
from ...utils.params import tensors_to_vec, vec_to_tensors

_RADIUS = "trust_radius"
_STEP = "step"


class _RadiusStrategy(Protocol):
    """``strategy(**kwargs) -> (new_radius, accepted)``; the keyword arguments are those of :func:`default_radius`."""

    def __call__(self, params: Sequence[torch.Tensor], closure: Callable, f: float, g: torch.Tensor,
                 H: LinearOperator, d: torch.Tensor, trust_radius: float, eta: float, nplus: float, nminus: float,
                 rho_good: float, rho_bad: float, boundary_tol: float | None, init: float,
                 state: Mapping[str, Any], settings: Mapping[str, Any], radius_fn: Callable | None = ...,
                 ) -> tuple[float, bool]: ...


def _to_float(x: Any) -> float:
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


def _flatten_tensors(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return tensors_to_vec(tensors)


def _loss_at(params: Sequence[torch.Tensor], closure: Callable, d: torch.Tensor) -> float:
    """``f(x - d)`` with one closure call (no gradient); the parameters are restored exactly."""
    x0 = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, x, di in zip(params, x0, vec_to_tensors(d, params)):
            torch.sub(x, di, out=p)
    try:
        loss = closure(False)
    finally:
        with torch.no_grad():
            torch._foreach_copy_(list(params), x0)
    return _to_float(loss)


def predicted_reduction(g: torch.Tensor, H: LinearOperator, d: torch.Tensor) -> float:
    """``m(0) - m(d) = g^T d - 1/2 d^T B d``."""
    return float(g.dot(d) - 0.5 * d.dot(H.matvec(d)))


def _get_rho(params: Sequence[torch.Tensor], closure: Callable, f: float, g: torch.Tensor,
             H: LinearOperator, d: torch.Tensor) -> tuple[float, float]:
    """``(rho, f(x - d))``: the ratio of actual to predicted reduction (one closure call)."""
    f_new = _loss_at(params, closure, d)
    pred = predicted_reduction(g, H, d)
    if not math.isfinite(f_new) or not pred > 0:
        # the model predicts no decrease (or the loss is not finite): the step cannot be trusted
        return -math.inf, f_new
    return (f - f_new) / pred, f_new


def default_radius(params: Sequence[torch.Tensor], closure: Callable, f: float, g: torch.Tensor, H: LinearOperator,
                   d: torch.Tensor, trust_radius: float, eta: float, nplus: float, nminus: float, rho_good: float,
                   rho_bad: float, boundary_tol: float | None, init: float, state: Mapping[str, Any],
                   settings: Mapping[str, Any], radius_fn: Callable | None = torch.linalg.vector_norm,
                   check_overflow: bool = True) -> tuple[float, bool]:
    """The classic radius rule (Nocedal & Wright, Algorithm 4.1, with configurable constants).

    With ``rho`` the ratio of actual to predicted reduction of the step ``d``:

    * ``rho < rho_bad``: ``r <- nminus * min(r, ||d||)`` (``||d||`` is ``radius_fn(d)``; without
      ``radius_fn``, as for the penalty methods whose step may be longer than ``r``, ``r <- nminus r``);
    * ``rho > rho_good``, and ``||d|| >= (1 - boundary_tol) r`` when ``boundary_tol`` is given (the
      step reached the boundary): ``r <- max(r, nplus ||d||)`` (``nplus r`` without ``radius_fn``), so
      a good step well inside the region does not inflate the radius;
    * otherwise ``r`` is kept.

    A step whose predicted reduction is not positive, or whose loss is not finite, gets
    ``rho = -inf``. The step is accepted when ``rho > eta``. With ``check_overflow``, a radius that is no longer a
    finite float of ``g``'s dtype (after many increases, or decreases at a minimum where rounding
    makes every step look bad) is reset to ``init``. Returns ``(new radius, accepted)``.
    """
    rho, _ = _get_rho(params, closure, f, g, H, d)
    dnorm = float(radius_fn(d)) if radius_fn is not None else None
    if rho < rho_bad:
        trust_radius = nminus * (trust_radius if dnorm is None else min(trust_radius, dnorm))
    elif rho > rho_good:
        if boundary_tol is None or dnorm is None or dnorm >= (1 - boundary_tol) * trust_radius:
            trust_radius = nplus * trust_radius if dnorm is None else max(trust_radius, nplus * dnorm)
    if check_overflow:
        fi = torch.finfo(g.dtype)
        if not (math.isfinite(trust_radius) and fi.tiny < trust_radius < fi.max / 2):
            trust_radius = init
    return trust_radius, rho > eta


def fixed_radius(params: Sequence[torch.Tensor], closure: Callable, f: float, g: torch.Tensor, H: LinearOperator,
                 d: torch.Tensor, trust_radius: float, eta: float, nplus: float, nminus: float, rho_good: float,
                 rho_bad: float, boundary_tol: float | None, init: float, state: Mapping[str, Any],
                 settings: Mapping[str, Any], radius_fn: Callable | None = torch.linalg.vector_norm) -> tuple[float, bool]:
    """The radius stays at ``init``; every step is accepted and no extra evaluation is made."""
    return init, True


_STRATEGIES: dict[str, Callable[..., tuple[float, bool]]] = {"default": default_radius, "fixed": fixed_radius}


class TrustRegionBase(Module, ABC):
    """Base class of trust-region methods.

    Each step: the Hessian-approximation module ``hess_module`` is updated (every
    ``update_freq`` steps) and its ``get_H`` linear operator ``B`` is taken; the vector ``g`` is the
    gradient, or the output of ``inner`` when given. Then, up to ``max_attempts`` times,
    :meth:`trust_solve` computes a step ``d`` for the current radius ``r`` and the radius strategy
    evaluates ``f(x - d)`` (one closure call), returns the new radius and whether ``d`` is
    accepted. The first accepted ``d`` becomes the update; if none is, the update is zero. The
    radius persists between steps (``global_state["trust_radius"]``).

    Subclasses implement :meth:`trust_solve`. :meth:`trust_region_update` (hook after ``B`` was
    updated) and :meth:`trust_region_apply` (the loop above) can be overridden.

    Args:
        defaults: settings of the subclass.
        hess_module: module(s) maintaining the Hessian approximation (quasi-Newton methods with
            ``inverse=False``, ``Newton``...).
        eta: a step is accepted when ``rho > eta``.
        nplus: radius growth factor on good steps.
        nminus: radius shrink factor on bad steps.
        rho_good: ``rho`` above which the radius grows.
        rho_bad: ``rho`` below which the radius shrinks.
        boundary_tol: the radius grows only when ``||d|| >= (1 - boundary_tol) r`` (None: always).
        init: initial radius.
        max_attempts: closure evaluations (trial steps) per step before giving up with a zero update.
        radius_strategy: ``"default"`` (:func:`default_radius`), ``"fixed"`` (:func:`fixed_radius`)
            or a callable with the same keyword arguments returning ``(new_radius, accepted)``.
        radius_fn: the norm of a step used by the radius rule (None: not used).
        update_freq: update ``hess_module`` every this many steps.
        inner: module(s) whose output replaces the gradient in the subproblem.
    """

    def __init__(self, defaults: dict | None, hess_module: Chainable, eta: float, nplus: float, nminus: float,
                 rho_good: float, rho_bad: float, boundary_tol: float | None, init: float, max_attempts: int,
                 radius_strategy: _RadiusStrategy | Literal["default", "fixed"], radius_fn: Callable | None,
                 update_freq: int = 1, inner: Chainable | None = None):
        if isinstance(radius_strategy, str) and radius_strategy not in _STRATEGIES:
            raise ValueError(f"radius_strategy must be 'default', 'fixed' or a callable, got {radius_strategy!r}")
        if not isinstance(radius_strategy, str) and not callable(radius_strategy):
            raise TypeError(f"radius_strategy must be 'default', 'fixed' or a callable, got {type(radius_strategy).__name__}")
        if int(max_attempts) < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if int(update_freq) < 1:
            raise ValueError(f"update_freq must be >= 1, got {update_freq}")
        if not init > 0:
            raise ValueError(f"init must be positive, got {init}")
        d = dict(eta=eta, nplus=nplus, nminus=nminus, rho_good=rho_good, rho_bad=rho_bad, boundary_tol=boundary_tol,
                 init=init, max_attempts=max_attempts, radius_strategy=radius_strategy)
        if defaults is not None:
            d.update(defaults)
        super().__init__(d)
        self._radius_fn = radius_fn
        self._update_freq = int(update_freq)
        self.set_child("hess_module", hess_module)
        if inner is not None:
            self.set_child("inner", inner)

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def trust_solve(self, f: float, g: torch.Tensor, H: LinearOperator, radius: float, params: list[torch.Tensor],
                    closure: Callable, settings: Mapping[str, Any]) -> torch.Tensor:
        """The step ``d`` (the update, subtracted from the parameters) for the model ``(g, H)`` and radius ``radius``."""

    def trust_region_update(self, objective: Objective, H: LinearOperator | None) -> None:
        """Called after ``hess_module`` was updated (and ``H`` taken from it). Optional."""

    def trust_region_apply(self, objective: Objective, tensors: list[torch.Tensor], H: LinearOperator | None) -> Objective:
        """Solves the subproblem for the current radius, evaluates the trial points, updates the
        radius and sets the accepted step (or zero) as the update."""
        if H is None:
            raise RuntimeError(f"{type(self).__name__}: hess_module {self.children['hess_module']!r} provides no "
                               "Hessian approximation (get_H returned None)")
        params = objective.params
        settings = self.settings[params[0]]
        f = _to_float(objective.get_loss(False))
        closure = objective.closure
        if closure is None:
            raise RuntimeError(f"{type(self).__name__} needs a closure to evaluate trial steps; pass one to optimizer.step(closure)")
        g = _flatten_tensors(tensors)
        if not bool(g.any()):
            # a stationary point of the model: nothing to try
            objective.set_updates([torch.zeros_like(p) for p in params], owned=True)
            return objective
        strategy = settings["radius_strategy"]
        if isinstance(strategy, str):
            strategy = _STRATEGIES[strategy]
        radius = float(self.global_state.get(_RADIUS, settings["init"]))
        d = None
        accepted = False
        for _ in range(int(settings["max_attempts"])):
            d = self.trust_solve(f, g, H, radius, params, closure, settings)
            radius, accepted = strategy(
                params=params, closure=self._trial_closure(closure, d), f=f, g=g, H=H, d=d, trust_radius=radius, eta=settings["eta"],
                nplus=settings["nplus"], nminus=settings["nminus"], rho_good=settings["rho_good"],
                rho_bad=settings["rho_bad"], boundary_tol=settings["boundary_tol"], init=settings["init"],
                state=self.global_state, settings=settings, radius_fn=self._radius_fn)
            radius = float(radius)
            if accepted:
                break
        self.global_state[_RADIUS] = radius
        if not accepted or d is None:
            d = torch.zeros_like(g)
        objective.set_updates(vec_to_tensors(d, params), owned=True)
        return objective

    def _trial_closure(self, closure: Callable, d: torch.Tensor) -> Callable:
        """The closure the radius strategy evaluates ``f(x - d)`` with (a subclass that already
        evaluated that point returns a closure answering from its cache)."""
        return closure

    # ------------------------------------------------------------------ plumbing
    def update(self, objective: Objective) -> None:
        step = self.global_state.get(_STEP, 0)
        self.global_state[_STEP] = step + 1
        hess = self.children["hess_module"]
        if step % self._update_freq == 0:
            hess.update(objective)
        self.trust_region_update(objective, hess.get_H(objective))

    def apply(self, objective: Objective) -> Objective:
        H = self.children["hess_module"].get_H(objective)
        if "inner" in self.children:
            objective = self.inner_step("inner", objective)
            tensors = objective.peek_updates()
        else:
            tensors = objective.get_grads()
        return self.trust_region_apply(objective, list(tensors), H)

    def get_H(self, objective: Objective | None = None):
        return self.children["hess_module"].get_H(objective)
