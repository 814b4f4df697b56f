"""MARS variance-reduction correction."""
from __future__ import annotations

import torch

from ...core.transform import TensorTransform


class MARSCorrection(TensorTransform):
    """MARS correction: adds a scaled difference of consecutive gradients, then clips the norm.

    With input ``g_t`` and the previous input ``g_{t-1}`` (``g_0`` on the first step, so the first
    output is the clipped input)::

        c_t = g_t + scaling * beta / (1 - beta) * (g_t - g_{t-1})
        c_t <- c_t * min(1, max_norm / ||c_t||)   (norm over all parameters; skipped with max_norm=None)

    Put a momentum method after it (Adam, Lion...) whose first-moment decay equals ``beta``.

    Yuan, Liu, Wu, Zhou, Zhou & Gu, 2024, "MARS: Unleashing the Power of Variance Reduction for
    Training Large Models", arXiv:2411.10438.

    Args:
        beta: momentum decay of the following method.
        scaling: scale ``gamma`` of the gradient correction.
        max_norm: maximal norm of the corrected gradient, all parameters together (None: no clipping).
    """

    def __init__(self, beta: float = 0.9, scaling: float = 0.025, max_norm: float | None = 1):
        super().__init__(dict(beta=beta, scaling=scaling, max_norm=max_norm))

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        prevs = []
        for t, st in zip(tensors, states):
            p = st.get("prev")
            if p is None:
                p = st["prev"] = t.clone()
            prevs.append(p)
        diff = torch._foreach_sub(tensors, prevs)
        torch._foreach_copy_(prevs, tensors)
        coefs = [s["scaling"] * s["beta"] / (1 - s["beta"]) for s in settings]
        torch._foreach_add_(tensors, torch._foreach_mul(diff, coefs))
        max_norms = [s["max_norm"] for s in settings]
        if any(mn is not None for mn in max_norms):
            idx = [i for i, mn in enumerate(max_norms) if mn is not None]
            sub = [tensors[i] for i in idx]
            total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(sub)))
            scales = [torch.clamp(max_norms[i] / total, max=1.0).nan_to_num(1.0) for i in idx]
            torch._foreach_mul_(sub, scales)
        return tensors

    def reset_for_online(self) -> None:
        super().reset_for_online()
        self.clear_state_keys("prev")
