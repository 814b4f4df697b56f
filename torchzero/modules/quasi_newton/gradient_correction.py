"""Gradient correction for inexact line searches."""
from __future__ import annotations

from typing import Any

import torch

from ...core.objective import Objective
from ...core.transform import TensorTransform

__all__ = ["GradientCorrection"]


class GradientCorrection(TensorTransform):
    """Estimates the gradient at the minimiser of the last search line, assuming a quadratic.

    On a quadratic the gradient along the line ``x_{k-1} + t s`` (``s = x_k - x_{k-1}``) is
    ``g_{k-1} + t y`` with ``y = g_k - g_{k-1}``; it is orthogonal to ``s`` at ``t* = -s^T g_{k-1} / s^T y``.
    The corrected gradient is the gradient there::

        g_c = g_k - (s^T g_k / s^T y) y

    which equals ``g_k`` after an exact line search. Use it as the ``inner`` module of a
    quasi-Newton method with an inexact line search, e.g.
    ``tz.m.LBFGS(inner=tz.m.GradientCorrection()), tz.m.Backtracking()``. The first step, and steps
    where ``s^T y = 0``, pass the gradient through. The dot products run over all parameters.
    Hoshino (1972), "A formulation of variable metric methods", IMA Journal of Applied
    Mathematics 10(3), 394-403, doi:10.1093/imamat/10.3.394.
    """

    def __init__(self):
        super().__init__()

    def apply_states(self, objective: Objective, states: Any, settings: Any) -> Objective:
        params = objective.params
        tensors = objective.peek_updates()
        x = [p.detach() for p in params]
        sts = [self.state[p] for p in params]
        if any("g_prev" not in st for st in sts):
            for st, xi, g in zip(sts, x, tensors):
                st["p_prev"] = xi.clone()
                st["g_prev"] = g.detach().clone()
            return objective
        p_prev = [st["p_prev"] for st in sts]
        g_prev = [st["g_prev"] for st in sts]
        s = torch._foreach_sub(x, p_prev)
        y = torch._foreach_sub(tensors, g_prev)
        sy = _dot(s, y)
        sg = _dot(s, tensors)
        torch._foreach_copy_(p_prev, x)
        torch._foreach_copy_(g_prev, tensors)
        if sy == 0:
            return objective
        out = torch._foreach_add(tensors, y, alpha=-sg / sy)
        objective.set_updates(out, owned=True)
        return objective

    def update_states(self, objective: Objective, states: Any, settings: Any) -> None:
        pass


def _dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return float(sum((x * y).sum() for x, y in zip(a, b)))
