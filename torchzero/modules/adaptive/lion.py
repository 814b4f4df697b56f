"""Lion."""
from __future__ import annotations

import torch

from ...core.objective import Objective
from ...core.transform import TensorTransform
from ...utils.foreach import map_scalar, scalar_or_list


class Lion(TensorTransform):
    """Lion (EvoLved Sign Momentum): the sign of an interpolation between momentum and gradient.

    With input ``g`` and momentum ``m`` (zero at first)::

        update = sign(beta1 m + (1 - beta1) g)
        m <- beta2 m + (1 - beta2) g

    Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms", arXiv:2302.06675.

    Args:
        beta1: interpolation between momentum and gradient for the update.
        beta2: decay of the momentum.
    """

    inplace = False

    def __init__(self, beta1: float = 0.9, beta2: float = 0.99):
        super().__init__(dict(beta1=beta1, beta2=beta2))

    def apply_states(self, objective: Objective, states, settings) -> Objective:
        params = objective.params
        tensors = objective.peek_updates()
        beta1, beta2 = self.settings.values(params, "beta1", "beta2")
        m = self.get_state(params, "exp_avg")
        c = torch._foreach_lerp(m, tensors, map_scalar(lambda b: 1 - b, scalar_or_list(beta1)))
        torch._foreach_sign_(c)
        torch._foreach_lerp_(m, tensors, map_scalar(lambda b: 1 - b, scalar_or_list(beta2)))
        if objective.is_last and not objective.skip_update:
            lrs = objective.last_module_lrs
            with torch.no_grad():
                if lrs is None:
                    torch._foreach_sub_(params, c)
                else:
                    lr = scalar_or_list(lrs)
                    if isinstance(lr, list):
                        torch._foreach_mul_(c, lr)
                        torch._foreach_sub_(params, c)
                    else:
                        torch._foreach_add_(params, c, alpha=-lr)
            objective.skip_update = True
            objective.stop = True
            return objective
        objective.set_updates(c, owned=True)
        return objective
