"""A line search that starts from the previous step size and moves it by constant factors."""
from __future__ import annotations

import torch

from ...core.objective import Objective
from .line_search import LineSearchBase


class AdaptiveBisection(LineSearchBase):
    """Line search that first tries the step size found on the previous step.

    With ``phi(a) = f(x - a d)``: if ``phi(a) < phi(0)`` the step size is multiplied by ``nplus``
    while the loss keeps decreasing (forward-tracking); otherwise it is multiplied by ``nminus``
    until the loss drops below ``phi(0)`` and then further while it keeps decreasing. The best
    step size becomes the first trial of the next step. At most ``maxiter`` evaluations are made;
    if none of them decreased the loss the parameters are left unchanged and, with ``adaptive``,
    the next search starts from the last trial times ``nminus`` (otherwise from ``init``).

    Args:
        init: initial step size.
        nplus: multiplier of the step size while forward-tracking.
        nminus: multiplier of the step size while backtracking.
        maxiter: maximum number of function evaluations per step.
        adaptive: continue decreasing the step size after a failed search.
    """

    def __init__(self, init: float = 1.0, nplus: float = 2, nminus: float = 0.5, maxiter: int = 10, adaptive=True):
        if not init > 0:
            raise ValueError(f"init must be positive, got {init}")
        if not nplus > 1:
            raise ValueError(f"nplus must be greater than 1, got {nplus}")
        if not 0 < nminus < 1:
            raise ValueError(f"nminus must be in (0, 1), got {nminus}")
        if maxiter < 1:
            raise ValueError(f"maxiter must be at least 1, got {maxiter}")
        super().__init__(dict(init=init, nplus=nplus, nminus=nminus, maxiter=maxiter, adaptive=adaptive))

    def search(self, update: list[torch.Tensor], var: Objective) -> float:
        s = self.settings[var.params[0]]
        nplus, nminus, maxiter = s["nplus"], s["nminus"], s["maxiter"]
        f_0 = self.f_0()
        a = self.global_state.get("a", s["init"])
        f_a = self.evaluate_f(a)
        n = 1
        factor = nplus
        if not f_a < f_0:
            # backtrack until the loss drops below phi(0)
            factor = nminus
            while not f_a < f_0 and n < maxiter:
                a *= nminus
                f_a = self.evaluate_f(a)
                n += 1
            if not f_a < f_0:
                self.global_state["a"] = a * nminus if s["adaptive"] else s["init"]
                return 0.0
        # keep moving in the same direction while the loss decreases
        best_a, best_f = a, f_a
        while n < maxiter:
            a = best_a * factor
            f_a = self.evaluate_f(a)
            n += 1
            if f_a < best_f:
                best_a, best_f = a, f_a
            else:
                break
        self.global_state["a"] = best_a
        return best_a
