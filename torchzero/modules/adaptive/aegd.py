"""AEGD."""
from __future__ import annotations

import torch

from ...core.transform import TensorTransform

def _loss_value(loss) -> float:
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)



class AEGD(TensorTransform):
    """AEGD: adaptive gradient descent with energy.

    With loss ``f``, input ``g`` and a per-weight energy ``r`` (``sqrt(f(x_0) + c)`` at the start)::

        v = g / (2 sqrt(f + c))
        r <- r / (1 + 2 lr v^2)
        update = 2 lr r v

    The energy ``r`` only decreases, which makes the method unconditionally energy stable. The
    learning rate is part of the rule, so do not follow this module by ``LR``. Needs the loss: pass a
    closure (or ``loss=`` to ``step``).

    Liu & Tian, 2020, "AEGD: Adaptive Gradient Descent with Energy", arXiv:2010.05109.

    Args:
        lr: learning rate.
        c: constant added to the loss so that ``f + c > 0``.
    """

    def __init__(self, lr: float = 0.1, c: float = 1):
        super().__init__(dict(lr=lr, c=c), uses_loss=True)

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        f = _loss_value(loss)
        for t, st, s in zip(tensors, states, settings):
            lr, c = s["lr"], s["c"]
            root = (f + c) ** 0.5
            r = st.get("r")
            if r is None:
                r = st["r"] = torch.full_like(t, root)
            t.div_(2 * root)  # v
            r.div_(t.square().mul_(2 * lr).add_(1))
            t.mul_(r).mul_(2 * lr)
        return tensors
