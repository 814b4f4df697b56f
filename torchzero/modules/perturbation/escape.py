"""Escaping stalls with a random search."""
from __future__ import annotations

import math

import torch

from ...core.evaluation import Perturbation, evaluate_points
from ...core.module import Module
from ...core.objective import Objective
from ..grad_approximation.base import draw_seeds

_BATCH = 16


class EscapeAnnealing(Module):
    """When the parameters stop changing, searches for a better point at growing radii.

    The step's update is watched: after ``n_tol`` consecutive steps with ``||update|| <= tol`` the
    module runs a random search around ``x`` instead: candidates ``x + r_k u`` with ``u`` a random
    direction of norm 1 and the radius growing from ``max_region / max_iter`` to ``max_region``
    (annealing run backwards: small moves first), evaluated in batches of 16. The first candidate
    with a lower loss becomes the step; if none is found after ``max_iter`` candidates the update
    is left as it was. Meant for stalls at saddle points or shallow local minima. Put it last
    (after the step size), since the step it finds is the full move to the better point.

    Reference: Kirkpatrick, S., Gelatt, C. D., & Vecchi, M. P. (1983), "Optimization by simulated
    annealing", Science 220(4598), 671-680, doi:10.1126/science.220.4598.671.

    Args:
        max_region: largest search radius.
        max_iter: number of candidates (evaluations) per search.
        tol: update norm below which a step counts as stalled.
        n_tol: stalled steps before searching.
    """

    def __init__(self, max_region: float = 1, max_iter: int = 1000, tol: float = 1e-6, n_tol: int = 10):
        if int(max_iter) < 1 or int(n_tol) < 1:
            raise ValueError(f"max_iter and n_tol must be >= 1, got {max_iter}, {n_tol}")
        super().__init__(dict(max_region=max_region, max_iter=max_iter, tol=tol, n_tol=n_tol))

    def apply(self, objective: Objective) -> Objective:
        params = objective.params
        s = self.settings[params[0]]
        upd = objective.peek_updates()
        norm = math.sqrt(sum(float((u * u).sum()) for u in upd))
        stalled = self.global_state.get("stalled", 0) + 1 if norm <= float(s["tol"]) else 0
        self.global_state["stalled"] = stalled
        if stalled < int(s["n_tol"]):
            return objective
        if objective.closure is None:
            raise RuntimeError("EscapeAnnealing searches by evaluating the objective and needs a closure; "
                               "pass one to optimizer.step(closure)")
        self.global_state["stalled"] = 0
        closure = objective.closure
        loss = objective.get_loss(False)
        f0 = float(loss.detach() if isinstance(loss, torch.Tensor) else loss)
        n = sum(p.numel() for p in params)
        base = [p.detach().clone() for p in params]
        max_iter, max_region = int(s["max_iter"]), float(s["max_region"])
        done = 0
        while done < max_iter:
            k = min(_BATCH, max_iter - done)
            seeds = draw_seeds(self, k, None)
            radii = [max_region * (done + i + 1) / max_iter for i in range(k)]
            # sphere directions have norm sqrt(n): scale by r / sqrt(n) for norm r
            points = [Perturbation(base, sd, r / math.sqrt(n), "sphere") for sd, r in zip(seeds, radii)]
            results = evaluate_points(closure, params, points)
            for pt, r in zip(points, results):
                if float(r.loss) < f0:
                    x = pt.materialize()
                    objective.set_updates([b - xi for b, xi in zip(base, x)], owned=True)
                    return objective
            done += k
        return objective
