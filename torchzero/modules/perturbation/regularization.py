"""Evaluating the objective at randomly perturbed or thinned weights, and update dropout."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch

from ...core.directions import check_distribution
from ...core.evaluation import EvalResult, Perturbation, Point, evaluate_points
from ...core.module import Module
from ...core.objective import Objective
from ...core.transform import Transform
from ..grad_approximation.base import draw_seeds

Metric = Literal["mad", "std", "var", "sum", "l0", "l1", "l2", "l3", "l4", "linf"] | float


def tensor_metric(t: torch.Tensor, metric: Any) -> float:
    """A size measure of ``t``: ``mad`` (mean absolute value), ``std``, ``var``, ``sum``, or a
    norm (``l0`` ... ``l4``, ``linf``, or a float order)."""
    t = t.detach()
    if t.numel() == 0:
        return 0.0
    if isinstance(metric, torch.Tensor):
        metric = float(metric)
    if metric == "mad":
        return float(t.abs().mean())
    if metric == "std":
        return float(t.std(unbiased=False))
    if metric == "var":
        return float(t.var(unbiased=False))
    if metric == "sum":
        return float(t.sum())
    if isinstance(metric, str) and metric.startswith("l"):
        order = math.inf if metric == "linf" else float(metric[1:])
    else:
        order = float(metric)
    if order == 0:
        return float((t != 0).sum())
    return float(torch.linalg.vector_norm(t, ord=order))


class _PointClosure:
    """A closure that evaluates the original one at ``point(params)`` instead of ``params``."""

    def __init__(self, owner: "_EvaluateElsewhere", closure: Callable, params: list[torch.Tensor]):
        self.owner = owner
        self.closure = closure
        self.params = params
        if hasattr(closure, "evaluate_batch"):
            self.evaluate_batch = self._evaluate_batch

    def __call__(self, backward: bool = True) -> Any:
        res = self._evaluate_batch([[p.detach().clone() for p in self.params]], backward)[0]
        if backward:
            assert res.grads is not None
            for p, g in zip(self.params, res.grads):
                p.grad = g
        return res.loss

    def _evaluate_batch(self, points: Sequence[Point], backward: bool = False) -> list[EvalResult]:
        from ...core.evaluation import materialize
        moved = [self.owner.move(materialize(pt), self.params) for pt in points]
        results = evaluate_points(self.closure, self.params, moved, backward)
        if backward:
            results = [EvalResult(r.loss, self.owner.transform_grads(r.grads)) for r in results]
        return results


class _EvaluateElsewhere(Module):
    """Base of modules whose closure evaluates the objective at a modified point ``m(x)``."""

    def move(self, point: list[torch.Tensor], params: list[torch.Tensor]) -> Point:
        raise NotImplementedError

    def transform_grads(self, grads: Any) -> Any:
        return grads

    def new_step(self, params: list[torch.Tensor]) -> None:
        """Draws the random modification of this step."""

    def apply(self, objective: Objective) -> Objective:
        closure = objective.closure
        if closure is None:
            raise RuntimeError(f"{type(self).__name__} evaluates the objective at modified weights and needs a closure; "
                               "pass one to optimizer.step(closure)")
        params = objective.params
        self.new_step(params)
        modified = _PointClosure(self, closure, params)
        res = modified._evaluate_batch([[p.detach().clone() for p in params]], True)[0]
        objective.loss = objective.loss_approx = res.loss
        objective.grads = list(res.grads)
        objective.set_updates(objective.grads, owned=False)
        objective.closure = modified
        return objective


class PerturbWeights(_EvaluateElsewhere):
    """Evaluates loss and gradients at randomly perturbed weights ``x + e`` (a new ``e`` each step).

    ``e_p = alpha * s_p * d_p`` with ``d`` drawn from ``distribution`` and ``s_p = metric(p)``
    (the mean absolute value by default) when ``relative``, else 1. Gradient noise of this kind
    regularizes and helps escape sharp minima (An, 1996). Set ``perturb=False`` in a parameter
    group to exempt its parameters. Each step's ``e`` travels as a seed.

    Reference: An, G. (1996), "The effects of adding noise during backpropagation training on a
    generalization performance", Neural Computation 8(3), 643-674, doi:10.1162/neco.1996.8.3.643.

    Args:
        alpha: perturbation magnitude.
        relative: scale by ``metric`` of each parameter.
        distribution: distribution of ``d``.
        metric: size measure used when ``relative`` (see :func:`tensor_metric`).
    """

    def __init__(self, alpha: float = 0.1, relative: bool = True,
                 distribution: Literal["normal", "gaussian", "uniform", "sphere", "rademacher"] = "normal",
                 metric: Metric = "mad"):
        check_distribution(distribution)
        super().__init__(dict(alpha=alpha, relative=relative, distribution=distribution, metric=metric, perturb=True))

    def new_step(self, params: list[torch.Tensor]) -> None:
        self.global_state["seed"] = draw_seeds(self, 1, None)[0]

    def move(self, point: list[torch.Tensor], params: list[torch.Tensor]) -> Point:
        alpha, relative, dist, metric, perturb = self.settings.values(params, "alpha", "relative", "distribution", "metric", "perturb")
        scales = [float(a) * (tensor_metric(x, m) if r else 1.0) if pb else 0.0
                  for x, a, r, m, pb in zip(point, alpha, relative, metric, perturb)]
        return Perturbation(point, int(self.global_state["seed"]), scales, dist[0])


class WeightDropout(_EvaluateElsewhere):
    """Evaluates loss and gradients with random weights set to zero (DropConnect).

    Each step every weight is dropped with probability ``p`` (a new mask each step, shared by all
    evaluations within the step); dropped weights get zero gradient, as in DropConnect. Set
    ``use_dropout=False`` in a parameter group to exempt its parameters.

    Reference: Wan, L., Zeiler, M., Zhang, S., LeCun, Y., & Fergus, R. (2013), "Regularization of
    neural networks using DropConnect", ICML.

    Args:
        p: probability of dropping each weight.
    """

    def __init__(self, p: float = 0.5):
        if not 0 <= p < 1:
            raise ValueError(f"p must be in [0, 1), got {p}")
        super().__init__(dict(p=p, use_dropout=True))

    def new_step(self, params: list[torch.Tensor]) -> None:
        self.global_state["seed"] = draw_seeds(self, 1, None)[0]

    def _masks(self, params: list[torch.Tensor]) -> list[torch.Tensor | None]:
        ps, use = self.settings.values(params, "p", "use_dropout")
        g = torch.Generator(device=params[0].device)
        g.manual_seed(int(self.global_state["seed"]))
        out = []
        for x, p, u in zip(params, ps, use):
            keep = torch.rand(x.shape, generator=g, device=x.device) >= p
            out.append(keep.to(x.dtype) if u else None)
        return out

    def move(self, point: list[torch.Tensor], params: list[torch.Tensor]) -> Point:
        self._current_masks = self._masks(params)
        return [x if m is None else x * m for x, m in zip(point, self._current_masks)]

    def transform_grads(self, grads: Any) -> Any:
        masks = getattr(self, "_current_masks", None)
        if grads is None or masks is None:
            return grads
        return [g if m is None else g * m for g, m in zip(grads, masks)]

    def __getstate__(self) -> dict[str, Any]:
        d = super().__getstate__()
        d.pop("_current_masks", None)
        return d


class Dropout(Transform):
    """Sets each entry of the update to zero with probability ``p``.

    Placed first it drops gradient entries (gradient dropout); placed after an optimizer it drops
    update entries. With ``graft`` the result is rescaled to the norm (over all parameters) the
    update had before dropout.

    Reference: Srivastava, N., Hinton, G., Krizhevsky, A., Sutskever, I., & Salakhutdinov, R.
    (2014), "Dropout: a simple way to prevent neural networks from overfitting", JMLR 15.

    Args:
        p: probability of zeroing each entry.
        graft: keep the update's norm.
    """

    def __init__(self, p: float = 0.5, graft: bool = False):
        if not 0 <= p < 1:
            raise ValueError(f"p must be in [0, 1), got {p}")
        super().__init__(dict(p=p, graft=graft))

    def apply_states(self, objective: Objective, states: Any, settings: Any) -> Objective:
        params = objective.params
        ps, grafts = self.settings.values(params, "p", "graft")
        upd = objective.get_updates()
        graft = any(grafts)
        before = math.sqrt(sum(float((u * u).sum()) for u in upd)) if graft else 0.0
        for u, p in zip(upd, ps):
            if p > 0:
                u.mul_(torch.rand(u.shape, device=u.device) >= p)
        if graft:
            after = math.sqrt(sum(float((u * u).sum()) for u in upd))
            if after > 0:
                torch._foreach_mul_(upd, before / after)
        return objective
