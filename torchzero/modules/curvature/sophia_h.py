"""SophiaH."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import Transform
from .hutchinson import Distribution, HVPMethod, check_args, scheduled_hutchinson


class SophiaH(Transform):
    """SophiaH (Liu, Li, Hall, Liang & Ma, 2024, "Sophia: A Scalable Stochastic Second-order Optimizer
    for Language Model Pre-training", ICLR; arXiv:2305.14342), the variant with Hutchinson's estimator.

    Momentum divided by an exponential moving average of Hessian-diagonal estimates, then clipped
    elementwise. Every ``update_freq`` steps (first on the first step), with ``k = n_samples`` random
    vectors ``z_i`` and ``H`` the Hessian at the current point::

        D_hat = (1/k) sum_i z_i * (H z_i)       (just H z_i with zHz=False)
        D <- beta2 D + (1 - beta2) D_hat

    and on every step, with ``g`` the incoming update::

        m <- beta1 m + (1 - beta1) g
        update = clip(m / max(precond_scale * D, eps), -clip, clip)

    With ``debias`` the moments are divided by ``1 - beta1^t`` and ``1 - beta2^s`` (``t`` steps,
    ``s`` Hessian estimates). The clipping bounds the step where the curvature estimate is tiny or
    negative (``max(., eps)`` makes the denominator positive).

    Needs a closure that accepts ``backward``. The Hessian-vector products use the current
    parameters, so SophiaH is usually the first module of the chain.

    Args:
        beta1: decay of the first moment.
        beta2: decay of the moving average of Hessian-diagonal estimates.
        update_freq: estimate the Hessian diagonal every this many steps.
        precond_scale: multiplier ``gamma`` of the Hessian-diagonal average.
        clip: bound of the elementwise clipping.
        eps: lower bound of the denominator.
        hvp_method: ``"autograd"`` / ``"batched_autograd"`` (exact products), ``"fd_forward"`` or
            ``"fd_central"`` (finite differences of gradients).
        distribution: distribution of the random vectors.
        h: finite-difference step.
        n_samples: random vectors per estimate.
        zHz: use ``z * Hz`` (the Hutchinson diagonal); False uses ``Hz``.
        debias: bias-correct both moving averages.
        seed: seed of the random vectors (None: the global generator).
        exp_avg_tfm: module(s) applied to a copy of the first moment before it is used.
        D_exp_avg_tfm: module(s) applied to a copy of the Hessian-diagonal average before it is used.
        inner: module(s) applied to the update before the first moment (as documented in the seed).
    """

    def __init__(self, beta1: float = 0.96, beta2: float = 0.99, update_freq: int = 10, precond_scale: float = 1,
                 clip: float = 1, eps: float = 1e-12, hvp_method: HVPMethod = "autograd", distribution: Distribution = "gaussian",
                 h: float = 1e-3, n_samples=1, zHz: bool = True, debias: bool = False, seed: int | None = None,
                 exp_avg_tfm: Chainable | None = None, D_exp_avg_tfm: Chainable | None = None, inner: Chainable | None = None):
        check_args(distribution, hvp_method, n_samples, update_freq)
        super().__init__(dict(beta1=beta1, beta2=beta2, precond_scale=precond_scale, clip=clip, eps=eps, debias=debias,
                              hvp_method=hvp_method, distribution=distribution, h=h, n_samples=int(n_samples), zHz=zHz,
                              seed=seed, update_freq=int(update_freq)), inner=inner)
        if exp_avg_tfm is not None:
            self.set_child("exp_avg", exp_avg_tfm)
        if D_exp_avg_tfm is not None:
            self.set_child("D_exp_avg", D_exp_avg_tfm)

    def update_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        params = objective.params
        D_hat = scheduled_hutchinson(self, objective, settings[0])
        if D_hat is None:
            return
        D = self.get_state(params, "D_exp_avg")
        torch._foreach_lerp_(D, D_hat, [1 - se["beta2"] for se in settings])
        self.global_state["hessian_step"] = self.global_state.get("hessian_step", 0) + 1

    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        params = objective.params
        g = objective.peek_updates()
        t = self.global_state["apply_step"] = self.global_state.get("apply_step", 0) + 1
        s_h = max(self.global_state.get("hessian_step", 1), 1)
        m = self.get_state(params, "exp_avg")
        torch._foreach_lerp_(m, g, [1 - se["beta1"] for se in settings])
        D = self.get_state(params, "D_exp_avg")
        if "exp_avg" in self.children:
            m = self.inner_step_tensors("exp_avg", m, clone=True, params=params)
        if "D_exp_avg" in self.children:
            D = self.inner_step_tensors("D_exp_avg", D, clone=True, params=params)
        out = []
        for mi, di, se in zip(m, D, settings):
            num = mi / (1 - se["beta1"] ** t) if se["debias"] else mi.clone()
            denom = di / (1 - se["beta2"] ** s_h) if se["debias"] else di.clone()
            denom.mul_(se["precond_scale"]).clamp_min_(se["eps"])
            out.append(num.div_(denom).clamp_(-se["clip"], se["clip"]))
        objective.set_updates(out, owned=True)
        return objective
