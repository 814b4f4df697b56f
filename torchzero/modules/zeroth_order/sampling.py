"""Gradient sampling and Gaussian homotopy."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...core.directions import check_distribution
from ...core.evaluation import Perturbation, Point, evaluate_points
from ...core.module import Module
from ...core.objective import Objective
from ...core.reformulation import Reformulation
from ..grad_approximation.base import as_float, check_seed, draw_seeds

_AGG = ("mean", "max", "min", "min-norm", "min-value")


class GradientSampling(Reformulation):
    """Optimizes an aggregate of the objective at randomly perturbed points.

    With perturbations ``z_1..z_n`` drawn from ``distribution`` and the current ``sigma``, the
    modified objective and its gradient at ``x`` are aggregates over the points
    ``x + sigma z_i`` (and ``x`` itself with ``include_x0``), all evaluated in one batch:

    * ``"mean"``: ``F = mean_i f(x + sigma z_i)``, ``grad F = mean_i grad f(x + sigma z_i)``: a
      Monte-Carlo estimate of the Gaussian smoothing ``E[f(x + sigma z)]`` used by Gaussian
      homotopy (Mobahi & Fisher, 2015);
    * ``"max"`` / ``"min"``: element-wise maximum / minimum of the gradients (values likewise);
    * ``"min-norm"``: the sampled gradient of smallest norm (and its value), a cheap stand-in
      for the minimum-norm element of the convex hull used by gradient sampling (Burke, Lewis &
      Overton, 2005);
    * ``"min-value"``: value and gradient of the sampled point with the lowest value.

    ``fixed`` keeps the same perturbations from step to step until ``termination`` fires; then
    ``sigma`` is multiplied by ``decay``, new perturbations are drawn and (with
    ``reset_on_termination``) the other modules are reset. ``sigma_strategy`` adapts ``sigma``
    every step: if at least ``sigma_target`` samples (a fraction of ``n`` when below 1) have a
    lower gradient norm (``"grad-norm"``) or value (``"value"``) than ``x``, ``sigma`` is
    multiplied by ``sigma_nplus``, otherwise by ``sigma_nminus``.

    References: Burke, J. V., Lewis, A. S., & Overton, M. L. (2005), "A robust gradient
    sampling algorithm for nonsmooth, nonconvex optimization", SIAM J. Optim. 15(3), 751-779,
    doi:10.1137/030601296; Mobahi, H., & Fisher, J. W. (2015), "On the link between Gaussian
    homotopy continuation and convex envelopes", EMMCVPR, doi:10.1007/978-3-319-14612-6_4.

    Args:
        modules: modules that optimize the modified objective (None: its gradient is the update).
        sigma: initial perturbation size.
        n: number of perturbations per step.
        aggregate: ``"mean"``, ``"max"``, ``"min"``, ``"min-norm"`` or ``"min-value"``.
        distribution: perturbation distribution.
        include_x0: also aggregate the unperturbed point.
        fixed: keep the perturbations until ``termination`` fires.
        pre_generate: draw the perturbations once per step (otherwise at every evaluation of the
            modified objective, unless ``fixed``).
        termination: termination module(s); firing shrinks ``sigma`` instead of stopping.
        decay: ``sigma`` multiplier when ``termination`` fires.
        reset_on_termination: reset the other modules when it fires.
        sigma_strategy: None, ``"grad-norm"`` or ``"value"``.
        sigma_target: samples that must satisfy the condition (fraction of ``n`` when < 1).
        sigma_nplus: multiplier when the condition holds.
        sigma_nminus: multiplier when it does not.
        seed: int seed, or None for the global torch RNG.
    """

    def __init__(self, modules: Chainable | None = None, sigma: float = 1.0, n: int = 100,
                 aggregate: Literal["mean", "max", "min", "min-norm", "min-value"] = "mean",
                 distribution: Literal["normal", "gaussian", "uniform", "sphere", "rademacher"] = "gaussian",
                 include_x0: bool = True, fixed: bool = True, pre_generate: bool = True,
                 termination: Module | Sequence[Module] | None = None, decay: float = 2 / 3,
                 reset_on_termination: bool = True, sigma_strategy: Literal["grad-norm", "value"] | None = None,
                 sigma_target: int | float = 0.2, sigma_nplus: float = 4 / 3, sigma_nminus: float = 2 / 3,
                 seed: int | None = None):
        if aggregate not in _AGG:
            raise ValueError(f"aggregate must be one of {_AGG}, got {aggregate!r}")
        check_distribution(distribution)
        if sigma_strategy not in (None, "grad-norm", "value"):
            raise ValueError(f"sigma_strategy must be None, 'grad-norm' or 'value', got {sigma_strategy!r}")
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        super().__init__(dict(sigma=sigma, n=n, aggregate=aggregate, distribution=distribution, include_x0=include_x0,
                              fixed=fixed, pre_generate=pre_generate, decay=decay,
                              reset_on_termination=reset_on_termination, sigma_strategy=sigma_strategy,
                              sigma_target=sigma_target, sigma_nplus=sigma_nplus, sigma_nminus=sigma_nminus), modules)
        self._seed = check_seed(seed)
        if termination is not None:
            self.set_child("termination", termination)

    def _setting(self, params: Sequence[torch.Tensor]) -> Any:
        return self.settings[params[0]]

    def _sigma(self, params: Sequence[torch.Tensor]) -> float:
        return float(self.global_state.setdefault("sigma", float(self._setting(params)["sigma"])))

    def _new_seeds(self, params: Sequence[torch.Tensor]) -> list[int]:
        return draw_seeds(self, int(self._setting(params)["n"]), self._seed)

    def pre_step(self, objective: Objective) -> None:
        s = self._setting(objective.params)
        self._sigma(objective.params)
        if "termination" in self.children and "seeds" in self.global_state:
            probe = objective.clone(clone_updates=False)
            probe.should_terminate = None
            probe = self.inner_step("termination", probe)
            if probe.should_terminate:
                self.global_state["sigma"] = self.global_state["sigma"] * float(s["decay"])
                self.global_state.pop("seeds", None)
                if s["reset_on_termination"] and objective.modular is not None:
                    for m in objective.modular.modules:
                        if m is not self:
                            m.reset()
                    if "modules" in self.children:
                        self.children["modules"].reset()
        if s["fixed"]:
            if "seeds" not in self.global_state:
                self.global_state["seeds"] = self._new_seeds(objective.params)
        elif s["pre_generate"]:
            self.global_state["seeds"] = self._new_seeds(objective.params)

    def closure(self, backward: bool, closure: Callable, params: list[torch.Tensor], objective: Objective):
        s = self._setting(params)
        if s["fixed"] or s["pre_generate"]:
            seeds = self.global_state.get("seeds")
            if seeds is None:
                seeds = self.global_state["seeds"] = self._new_seeds(params)
        else:
            seeds = self._new_seeds(params)
        sigma = self._sigma(params)
        base = [p.detach().clone() for p in params]
        points: list[Point] = [Perturbation(base, sd, sigma, s["distribution"]) for sd in seeds]
        include_x0 = bool(s["include_x0"])
        strategy = s["sigma_strategy"]
        with_x0 = include_x0 or strategy is not None
        if with_x0:
            points.insert(0, base)
        need_grads = backward or strategy == "grad-norm" or s["aggregate"] in ("max", "min", "min-norm")
        results = evaluate_points(closure, params, points, backward=need_grads)
        values = [float(as_float(r.loss)) for r in results]
        grads = [r.grads for r in results]

        if strategy is not None:
            self._adapt_sigma(s, values, grads)
        if with_x0 and not include_x0:
            values, grads, results = values[1:], grads[1:], results[1:]

        agg = s["aggregate"]
        ref = results[0].loss
        dtype = ref.dtype if isinstance(ref, torch.Tensor) else params[0].dtype
        if agg == "mean":
            loss = sum(values) / len(values)
            g = _mean(grads) if need_grads else None
        elif agg in ("max", "min"):
            loss = max(values) if agg == "max" else min(values)
            g = _elementwise(grads, agg)
        else:
            if agg == "min-norm":
                norms = [sum(float((t * t).sum()) for t in gi) for gi in grads]
                k = min(range(len(norms)), key=norms.__getitem__)
            else:
                k = min(range(len(values)), key=values.__getitem__)
            loss = values[k]
            g = [t.clone() for t in grads[k]] if need_grads else None
        loss_t = torch.tensor(loss, dtype=dtype)
        return loss_t, g

    def _adapt_sigma(self, s: Any, values: list[float], grads: list[Any]) -> None:
        target = float(s["sigma_target"])
        n = len(values) - 1
        need = target * n if 0 < target < 1 else target
        if s["sigma_strategy"] == "value":
            better = sum(v < values[0] for v in values[1:])
        else:
            n0 = math.sqrt(sum(float((t * t).sum()) for t in grads[0]))
            better = sum(math.sqrt(sum(float((t * t).sum()) for t in g)) < n0 for g in grads[1:])
        mult = float(s["sigma_nplus"]) if better >= need else float(s["sigma_nminus"])
        self.global_state["sigma"] = self.global_state["sigma"] * mult


def _mean(grads: list[Any]) -> list[torch.Tensor]:
    out = [g.clone() for g in grads[0]]
    for gi in grads[1:]:
        torch._foreach_add_(out, gi)
    torch._foreach_div_(out, len(grads))
    return out


def _elementwise(grads: list[Any], how: str) -> list[torch.Tensor]:
    out = [g.clone() for g in grads[0]]
    for gi in grads[1:]:
        if how == "max":
            torch._foreach_maximum_(out, gi)
        else:
            torch._foreach_minimum_(out, gi)
    return out
