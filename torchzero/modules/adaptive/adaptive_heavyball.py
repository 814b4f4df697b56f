"""Adaptive heavy ball with Polyak step sizes."""
from __future__ import annotations

import torch

from ...core.transform import TensorTransform

def _loss_value(loss) -> float:
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)



def _dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    return sum(torch.dot(x.reshape(-1), y.reshape(-1)) for x, y in zip(a, b))  # type: ignore[return-value]


class AdaptiveHeavyBall(TensorTransform):
    """Heavy ball whose step size and momentum come from the optimal value ``f*`` (Polyak-style).

    With ``f_t`` the loss, ``g_t`` the input and ``x_t`` the parameters, the first step is the
    Polyak step ``x_1 = x_0 - 2 (f_0 - f*) / ||g_0||^2 g_0``; afterwards::

        D   = (f_{t-1} - f*) ||g_t||^2 + (f_t - f*) <g_t, g_{t-1}>
        m_t = -(f_t - f*) <g_t, g_{t-1}> / D
        h_t = 2 (f_t - f*) (f_{t-1} - f*) / D
        x_{t+1} = x_t - h_t g_t + m_t (x_t - x_{t-1})

    Where ``f_t <= f*`` (the estimate of ``f*`` is too high) the step is the plain input ``g_t``.
    On a convex quadratic with the exact ``f*`` this reproduces the conjugate gradient iterates
    (finite-time convergence). The method sets its own step size: do not follow it by ``LR``.
    Needs the loss (a closure).

    Goujaud, Taylor & Dieuleveut, 2024, "Quadratic minimization: from conjugate gradient to an
    adaptive Polyak's momentum method with Polyak step-sizes", Open Journal of Mathematical
    Optimization 5, doi:10.5802/ojmo.36, arXiv:2210.06367.

    Args:
        f_star: (an estimate of) the minimal value of the objective.
    """

    def __init__(self, f_star: float = 0):
        super().__init__(dict(f_star=f_star), uses_loss=True)

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        f_star = settings[0]["f_star"]
        f = _loss_value(loss) - f_star
        gs = self.global_state
        g_sq = _dot(tensors, tensors)
        f_prev = gs.get("f_prev")
        if f <= 0:
            # at or below the assumed optimal value the Polyak quantities lose their sign: plain step
            out = [t.clone() for t in tensors]
        elif f_prev is None:
            out = torch._foreach_mul(tensors, 2 * f / g_sq)
        else:
            x_prev = [st["x_prev"] for st in states]
            g_prev = [st["g_prev"] for st in states]
            gg = _dot(tensors, g_prev)
            denom = f_prev * g_sq + f * gg
            if denom == 0:
                out = [t.clone() for t in tensors]
            else:
                m = -f * gg / denom
                h = 2 * f * f_prev / denom
                # update = h g - m (x - x_prev)
                out = torch._foreach_sub([p.detach() for p in params], x_prev)
                torch._foreach_mul_(out, -m)
                torch._foreach_add_(out, torch._foreach_mul(tensors, h))
        for p, t, st in zip(params, tensors, states):
            if "x_prev" in st:
                st["x_prev"].copy_(p.detach())
                st["g_prev"].copy_(t)
            else:
                st["x_prev"] = p.detach().clone()
                st["g_prev"] = t.clone()
        gs["f_prev"] = f
        return out

    def reset_for_online(self) -> None:
        super().reset_for_online()
        self.global_state.pop("f_prev", None)
        self.clear_state_keys("x_prev", "g_prev")
