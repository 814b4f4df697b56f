"""Coordinate-wise finite differences."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch

from ...core.evaluation import Perturbation, Point
from .base import GradApproximator, Target
from .formulas import get_stencil

Formula = Literal["forward", "forward2", "backward", "backward2", "central", "central2", "central3", "forward3",
                  "backward3", "central4", "forward4", "forward5", "bspsa4"]


class FDM(GradApproximator):
    """Gradient by finite differences along every coordinate.

    For each entry ``i`` of the parameters, with ``e_i`` the ``i``-th coordinate vector and the
    stencil of ``formula`` (offsets ``o_k``, weights ``w_k``; see
    :mod:`torchzero.modules.grad_approximation.formulas`)::

        g_i = sum_k w_k f(x + o_k h e_i) / h

    e.g. ``central``: ``g_i = (f(x + h e_i) - f(x - h e_i)) / (2h)``, exact for quadratics and
    accurate to O(h^2) in general; ``forward``: ``(f(x + h e_i) - f(x)) / h``, O(h). A step costs
    ``n * (number of nonzero offsets)`` evaluations (plus ``f(x)`` for one-sided stencils), all
    submitted as one batch; each point travels as a seed (the coordinate index) and a scale.

    The estimate replaces the gradient; by default later modules also see a closure that returns
    it (``target="closure"``), so e.g. ``tz.m.FDM(), tz.m.NewtonCG(hvp_method="forward"),
    tz.m.Backtracking()`` works without autograd.

    Reference: Nocedal & Wright (2006), "Numerical Optimization", 2nd ed., section 8.1.

    Args:
        h: step size (a per-parameter setting).
        formula: finite-difference stencil.
        target: ``"closure"``, ``"grad"`` or ``"update"`` (see :class:`GradApproximator`).
    """

    def __init__(self, h: float = 1e-3, formula: Formula = "central", target: Target = "closure"):
        get_stencil(formula)
        if h <= 0:
            raise ValueError(f"h must be positive, got {h}")
        super().__init__(dict(h=h, formula=formula), target=target)

    def approximate(self, closure: Callable, params: list[torch.Tensor], loss: Any):
        return self.approximate_at(closure, params, loss, want_loss=False)

    def approximate_at(self, closure: Callable, params: list[torch.Tensor], loss: Any, want_loss: bool):
        hs, formulas = self.settings.values(params, "h", "formula")
        offsets, weights = get_stencil(formulas[0])
        base = [p.detach().clone() for p in params]
        need_f0 = loss is None and (want_loss or 0 in offsets)
        points: list[Point] = [base] if need_f0 else []
        nonzero = [(o, w) for o, w in zip(offsets, weights) if o != 0]
        index = 0
        coords: list[float] = []  # h of each coordinate
        for p, h in zip(params, hs):
            for _ in range(p.numel()):
                for o, _w in nonzero:
                    points.append(Perturbation(base, index, o * h, "basis"))
                coords.append(h)
                index += 1
        values = self.evaluate(closure, params, points)
        if need_f0:
            loss = values[0]
            values = values[1:]
        dtype, device = params[0].dtype, params[0].device
        m = len(nonzero)
        f = torch.as_tensor([float(v) for v in values], dtype=torch.float64).view(index, m) if index else torch.zeros(0, m, dtype=torch.float64)
        w = torch.tensor([w for _o, w in nonzero], dtype=torch.float64)
        g = f @ w
        w0 = sum(wk for o, wk in zip(offsets, weights) if o == 0)
        if w0 != 0:
            g = g + w0 * float(loss)
        g = g / torch.tensor(coords, dtype=torch.float64)
        grads = []
        start = 0
        for p in params:
            grads.append(g[start:start + p.numel()].view(p.shape).to(dtype=p.dtype, device=p.device))
            start += p.numel()
        loss_approx = values[0] if values else loss
        del dtype, device
        return grads, loss, loss_approx
