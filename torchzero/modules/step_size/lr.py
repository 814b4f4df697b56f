"""Learning rate modules."""
from __future__ import annotations

import torch

from ...core.objective import Objective
from ...core.transform import TensorTransform
from ...utils.foreach import scalar_or_list


class StepSize(TensorTransform):
    """Multiplies the update by a step size stored under the setting ``key``.

    ``update <- step_size * update``. Identical to :class:`LR` except that the setting can be given
    another name, so it does not clash with a scheduler's ``lr``.

    When it is the last module of the optimizer, the scaled update is subtracted from the
    parameters in one fused operation (``p -= step_size * u``), as ``torch.optim.SGD`` does.
    """

    is_learning_rate = True

    def __init__(self, step_size: float, key: str = "step_size"):
        super().__init__({key: step_size})
        self._key = key

    def lrs(self, params: list[torch.Tensor]) -> list[float]:
        """Per-parameter step sizes."""
        return self.settings.values(params, self._key)[0]

    def apply(self, objective: Objective) -> Objective:
        lrs = self.lrs(objective.params)
        if objective.is_last and not objective.skip_update:
            # fused final step: no copy of the update, one pass over the parameters
            if objective.last_module_lrs is not None:  # a final LR follows this module
                lrs = [a * b for a, b in zip(lrs, objective.last_module_lrs)]
            lr = scalar_or_list(lrs)
            upd = objective.peek_updates()
            with torch.no_grad():
                if isinstance(lr, list):
                    torch._foreach_add_(objective.params, torch._foreach_mul(upd, lr), alpha=-1)
                else:
                    torch._foreach_add_(objective.params, upd, alpha=-lr)
            objective.skip_update = True
            objective.stop = True
            return objective
        torch._foreach_mul_(objective.get_updates(), scalar_or_list(lrs))
        return objective


class LR(StepSize):
    """Learning rate: ``update <- lr * update``. Makes the optimizer work with ``torch.optim.lr_scheduler``,
    which writes ``lr`` into the parameter groups."""

    def __init__(self, lr: float):
        super().__init__(lr, key="lr")
