"""Adan."""
from __future__ import annotations

from typing import Any

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import TensorTransform
from ...utils.foreach import map_scalar, scalar_or_list


class Adan(TensorTransform):
    """Adan (Adaptive Nesterov Momentum): Adam-like method with a moving average of gradient differences.

    With input ``g_t``, ``d_t = g_t - g_{t-1}`` (zero on the first step) and step ``t``::

        m <- beta1 m + (1 - beta1) g_t
        v <- beta2 v + (1 - beta2) d_t
        n <- beta3 n + (1 - beta3) (g_t + beta2 d_t)^2
        update = (m / (1 - beta1^t) + beta2 v / (1 - beta2^t)) / (sqrt(n / (1 - beta3^t)) + eps)

    The betas here are decays (the paper writes ``1 - beta``); the moving averages are debiased.
    Weight decay is left to a separate module.

    Xie, Zhou, Li, Lin & Yan, 2024, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing
    Deep Models", IEEE TPAMI, arXiv:2208.06677.

    Args:
        beta1: decay of the moving average of gradients.
        beta2: decay of the moving average of gradient differences.
        beta3: decay of the moving average of squared corrected gradients.
        eps: added to the denominator.
        m_tfm: module(s) applied to a copy of ``m`` before it is used.
        v_tfm: module(s) applied to a copy of ``v`` before it is used.
        n_tfm: module(s) applied to a copy of ``n`` before it is used.
    """

    inplace = False

    def __init__(self, beta1: float = 0.98, beta2: float = 0.92, beta3: float = 0.99, eps: float = 1e-8,
                 m_tfm: Chainable | None = None, v_tfm: Chainable | None = None, n_tfm: Chainable | None = None):
        super().__init__(dict(beta1=beta1, beta2=beta2, beta3=beta3, eps=eps))
        for key, tfm in (("m", m_tfm), ("v", v_tfm), ("n", n_tfm)):
            if tfm is not None:
                self.set_child(key, tfm)

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings):
        beta1, beta2, beta3 = self.settings.values(params, "beta1", "beta2", "beta3")
        self.global_state["step"] = self.global_state.get("step", 0) + 1
        b1, b2, b3 = scalar_or_list(beta1), scalar_or_list(beta2), scalar_or_list(beta3)
        m, v, n = self.get_state(params, "exp_avg", "exp_avg_diff", "exp_avg_sq")
        prev = [st.get("prev") for st in states]
        torch._foreach_lerp_(m, tensors, map_scalar(lambda b: 1 - b, b1))
        if prev[0] is None:
            # first step: the difference is zero, v stays at zero
            torch._foreach_mul_(n, b3)
            torch._foreach_addcmul_(n, tensors, tensors, map_scalar(lambda b: 1 - b, b3))
            for st, t in zip(states, tensors):
                st["prev"] = t.clone()
            return
        # the buffer of the previous input becomes d = g - g_prev, then g + beta2 d, then g again
        torch._foreach_sub_(prev, tensors)
        torch._foreach_neg_(prev)
        torch._foreach_lerp_(v, prev, map_scalar(lambda b: 1 - b, b2))
        torch._foreach_mul_(prev, b2)
        torch._foreach_add_(prev, tensors)
        torch._foreach_mul_(n, b3)
        torch._foreach_addcmul_(n, prev, prev, map_scalar(lambda b: 1 - b, b3))
        torch._foreach_copy_(prev, tensors)

    def apply_states(self, objective: Objective, states: Any, settings: Any) -> Objective:
        params = objective.params
        beta1, beta2, beta3, eps = self.settings.values(params, "beta1", "beta2", "beta3", "eps")
        step = self.global_state.get("step", 1)
        m, v, n = self.get_state(params, "exp_avg", "exp_avg_diff", "exp_avg_sq")
        if "m" in self.children:
            m = self.inner_step_tensors("m", m, clone=True, params=params)
        if "v" in self.children:
            v = self.inner_step_tensors("v", v, clone=True, params=params)
        if "n" in self.children:
            n = self.inner_step_tensors("n", n, clone=True, params=params)
        bc1 = [1 - b ** step for b in beta1]
        v_scale = [b / (1 - b ** step) for b in beta2]
        bc3_root = scalar_or_list([(1 - b ** step) ** 0.5 for b in beta3])
        denom = torch._foreach_sqrt(n)
        torch._foreach_div_(denom, bc3_root)
        torch._foreach_add_(denom, scalar_or_list(eps))
        if objective.is_last and not objective.skip_update:
            # two fused passes over the parameters instead of materialising the numerator
            lrs = objective.last_module_lrs or [1.0] * len(params)
            with torch.no_grad():
                torch._foreach_addcdiv_(params, m, denom, scalar_or_list([-lr / b for lr, b in zip(lrs, bc1)]))
                torch._foreach_addcdiv_(params, v, denom, scalar_or_list([-lr * c for lr, c in zip(lrs, v_scale)]))
            objective.skip_update = True
            objective.stop = True
            return objective
        # numerator m / bc1 + beta2 v / bc2
        numer = torch._foreach_div(m, scalar_or_list(bc1))
        vs = scalar_or_list(v_scale)
        if isinstance(vs, list):
            torch._foreach_add_(numer, torch._foreach_mul(v, vs))
        else:
            torch._foreach_add_(numer, v, alpha=vs)
        torch._foreach_div_(numer, denom)
        objective.set_updates(numer, owned=True)
        return objective
