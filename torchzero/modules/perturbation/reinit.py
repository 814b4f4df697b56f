"""Random re-initialization of weights."""
from __future__ import annotations

import torch

from ...core.directions import derive_seed
from ...core.module import Module
from ...core.objective import Objective
from ..grad_approximation.base import draw_seeds


class RandomReinitialize(Module):
    """With probability ``p_reinit`` per step, resets a random fraction of the weights to stored values.

    The stored values are the parameters at the first step. With ``store_every=k`` they are
    refreshed every ``k`` steps as ``stored <- beta stored + (1 - beta) x`` (with ``k = 1`` and
    ``beta`` close to 1, weights are reset to a slow moving average of themselves). When a
    reinitialization triggers, each weight is reset with probability ``p_weights``; with
    ``reset`` the state of the other modules is cleared too. This modifies the parameters
    directly, so put it first. Partial re-initialization ("shrink and perturb" style resets)
    helps networks that lose plasticity (Ash & Adams, 2020; Dohare et al., 2024).

    References: Ash, J. T., & Adams, R. P. (2020), "On warm-starting neural network training",
    NeurIPS, arXiv:1910.08475; Dohare, S. et al. (2024), "Loss of plasticity in deep continual
    learning", Nature 632, 768-774, doi:10.1038/s41586-024-07711-7.

    Args:
        p_reinit: probability that a reinitialization triggers at a step.
        p_weights: probability for each weight to be reset when it triggers.
        store_every: refresh the stored values every this many steps (None: never).
        beta: interpolation weight of the old stored values when refreshing.
        reset: clear the other modules' state on reinitialization.
        seed: int seed, or None for the global torch RNG.
    """

    def __init__(self, p_reinit: float = 0.01, p_weights: float = 0.1, store_every: int | None = None,
                 beta: float = 0, reset: bool = False, seed: int | None = None):
        if not 0 <= p_reinit <= 1 or not 0 <= p_weights <= 1:
            raise ValueError(f"p_reinit and p_weights must be in [0, 1], got {p_reinit}, {p_weights}")
        if store_every is not None and int(store_every) < 1:
            raise ValueError(f"store_every must be >= 1 or None, got {store_every}")
        super().__init__(dict(p_reinit=p_reinit, p_weights=p_weights, store_every=store_every, beta=beta, reset=reset))
        self._seed = seed

    def apply(self, objective: Objective) -> Objective:
        params = objective.params
        s = self.settings[params[0]]
        step = self.increment_counter("step", 0)
        stored = self.get_state(params, "init", init="param")
        every = s["store_every"]
        if step > 0 and every is not None and step % int(every) == 0:
            beta = float(s["beta"])
            torch._foreach_lerp_(stored, [p.detach() for p in params], 1 - beta)
        seed = draw_seeds(self, 1, self._seed)[0]
        g = torch.Generator()
        g.manual_seed(seed)
        if float(torch.rand((), generator=g)) >= float(s["p_reinit"]):
            return objective
        p_weights = self.settings.values(params, "p_weights")[0]
        gd = torch.Generator(device=params[0].device)
        gd.manual_seed(derive_seed(seed, 1))
        with torch.no_grad():
            for p, st, pw in zip(params, stored, p_weights):
                mask = torch.rand(p.shape, generator=gd, device=p.device) < pw
                p.copy_(torch.where(mask, st, p))
        if s["reset"] and objective.modular is not None:
            for m in objective.modular.modules:
                if m is not self:
                    m.reset()
        # gradients computed before the reset belong to the old weights
        if objective.closure is not None:
            objective.grads = None
            objective.loss = None
            objective.updates = None
        return objective
