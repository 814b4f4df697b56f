"""Gradient accumulation."""
from __future__ import annotations

import torch

from ...core.module import Module
from ...core.objective import Objective


class GradientAccumulation(Module):
    """Accumulates the incoming update (the gradient when placed first) over ``n`` steps.

    On steps ``1..n-1`` of each cycle the update is added to a buffer; on step ``n`` the
    accumulated sum (or mean, with ``mean``) becomes the update and the buffer is cleared. With
    ``stop`` the modules after this one do not run and the parameters do not change until the
    cycle completes, which is equivalent to an ``n`` times larger batch; without it the later
    modules run every step, on the plain update, and on the accumulated one at the end of each
    cycle.

    Args:
        n: number of updates to accumulate.
        mean: average instead of sum.
        stop: skip the later modules and the parameter update until ``n`` updates are accumulated.
    """

    def __init__(self, n: int, mean: bool = True, stop: bool = True):
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        super().__init__(dict(n=int(n), mean=mean, stop=stop))

    def apply(self, objective: Objective) -> Objective:
        params = objective.params
        s = self.settings[params[0]]
        n, mean, stop = int(s["n"]), bool(s["mean"]), bool(s["stop"])
        upd = objective.peek_updates()
        acc = self.get_state(params, "accumulator")
        torch._foreach_add_(acc, upd)
        k = self.increment_counter("count", 0) + 1
        if k < n:
            if stop:
                objective.stop = True
                objective.skip_update = True
            return objective
        self.global_state["count"] = 0
        out = [a.clone() for a in acc]
        if mean:
            torch._foreach_div_(out, n)
        for a in acc:
            a.zero_()
        objective.set_updates(out, owned=True)
        return objective
