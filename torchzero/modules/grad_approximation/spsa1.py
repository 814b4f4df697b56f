"""One-measurement SPSA."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ...core.directions import make_direction
from ...core.evaluation import Perturbation, Point
from ...core.objective import Objective
from .base import GradApproximator, Target, check_seed, draw_seeds


class SPSA1(GradApproximator):
    """One-measurement SPSA (Spall, 1997).

    One evaluation per sample, at a point perturbed by a Rademacher direction ``d_i``::

        g = (1/n) sum_i (f(x + h d_i) + eps) / h * d_i^{-1}        (d_i^{-1} = d_i for +-1 entries)

    Since ``E[d] = 0`` and ``E[d d^T] = I``, ``E[g] = grad f(x) + O(h)``, but the variance carries
    the term ``f(x)^2 / h^2``: single estimates are often not descent directions, only their
    expectation is. Meant for objectives that change between evaluations (e.g. feedback
    control), where the two measurements of SPSA would not see the same function. ``eps`` is an
    estimate of the measurement noise added to every measurement.

    Reference: Spall, J. C. (1997), "A one-measurement form of simultaneous perturbation
    stochastic approximation", Automatica 33(1), 109-112, doi:10.1016/S0005-1098(96)00149-5.

    Args:
        h: perturbation size; the paper suggests the same order as the learning rate.
        n_samples: number of measurements (directions) per estimate.
        eps: measurement noise estimate.
        pre_generate: keep one set of directions for every estimate within a step.
        seed: int seed, ``torch.Generator`` or None (global RNG).
        target: ``"closure"``, ``"grad"`` or ``"update"``.
    """

    def __init__(self, h: float = 1e-3, n_samples: int = 1, eps: float = 1e-8, pre_generate: bool = False,
                 seed: int | None | torch.Generator = None, target: Target = "closure"):
        if h <= 0:
            raise ValueError(f"h must be positive, got {h}")
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        super().__init__(dict(h=h, n_samples=n_samples, eps=eps), target=target)
        self._pre_generate = bool(pre_generate)
        self._seed = check_seed(seed)

    def pre_step(self, objective: Objective) -> None:
        if self._pre_generate:
            n = int(self.settings[objective.params[0]]["n_samples"])
            self.global_state["seeds"] = draw_seeds(self, n, self._seed)

    def approximate(self, closure: Callable, params: list[torch.Tensor], loss: Any):
        return self.approximate_at(closure, params, loss, want_loss=False)

    def approximate_at(self, closure: Callable, params: list[torch.Tensor], loss: Any, want_loss: bool):
        hs, ns, epss = self.settings.values(params, "h", "n_samples", "eps")
        n = int(ns[0])
        seeds = self.global_state.get("seeds") if self._pre_generate else None
        if seeds is None:
            seeds = draw_seeds(self, n, self._seed)
        base = [p.detach().clone() for p in params]
        uniform_h = all(h == hs[0] for h in hs)
        points: list[Point] = [Perturbation(base, s, hs[0] if uniform_h else list(hs), "rademacher") for s in seeds]
        need_f0 = want_loss and loss is None
        if need_f0:
            points.append(base)
        values = self.evaluate(closure, params, points)
        if need_f0:
            loss = values[-1]
        grads = [torch.zeros_like(b) for b in base]
        for s, v in zip(seeds, values):
            d = make_direction("rademacher", s, base)
            torch._foreach_add_(grads, d, alpha=float(v) + float(epss[0]))
        if uniform_h:
            torch._foreach_div_(grads, len(seeds) * hs[0])
        else:
            torch._foreach_div_(grads, [len(seeds) * h for h in hs])
        return grads, loss, values[0]
