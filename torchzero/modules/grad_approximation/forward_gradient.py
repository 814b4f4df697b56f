"""Forward gradients."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch

from ...core.evaluation import evaluate_points
from .base import Target, as_float
from .rfdm import Distribution, RandomizedFDM


class ForwardGradient(RandomizedFDM):
    """Forward gradient (Baydin et al., 2022).

    With directions ``d_i`` (zero mean, ``E[d d^T] = I``)::

        g = (1/n) sum_i (grad f(x) . d_i) d_i

    an unbiased estimate of the gradient built from directional derivatives (Jacobian-vector
    products). ``jvp_method="autograd"`` computes them exactly from one autograd evaluation at
    ``x``; ``"forward"`` and ``"central"`` use finite differences with step ``h``, which makes
    this :class:`RandomizedFDM` with that stencil.

    Reference: Baydin, A. G., Pearlmutter, B. A., Syme, D., Wood, F., & Torr, P. (2022),
    "Gradients without backpropagation", arXiv:2202.08587.

    Args:
        n_samples: number of directions.
        distribution: direction distribution.
        pre_generate: keep one set of directions for every estimate within a step.
        jvp_method: ``"autograd"``, ``"forward"`` or ``"central"``.
        h: finite-difference step for ``"forward"`` / ``"central"``.
        target: ``"closure"``, ``"grad"`` or ``"update"``.
        seed: int seed, ``torch.Generator`` or None (global RNG).
    """

    PRE_MULTIPLY_BY_H = False

    def __init__(self, n_samples: int = 1, distribution: Distribution = "gaussian", pre_generate: bool = True,
                 jvp_method: Literal["autograd", "forward", "central"] = "autograd", h: float = 1e-3,
                 target: Target = "closure", seed: int | None | torch.Generator = None):
        if jvp_method not in ("autograd", "forward", "central"):
            raise ValueError(f"jvp_method must be 'autograd', 'forward' or 'central', got {jvp_method!r}")
        formula = "central2" if jvp_method == "central" else "forward2"
        super().__init__(h=h, n_samples=n_samples, formula=formula, distribution=distribution, pre_generate=pre_generate,
                         seed=seed, target=target)
        self._jvp_method = jvp_method

    def approximate_at(self, closure: Callable, params: list[torch.Tensor], loss: Any, want_loss: bool):
        if self._jvp_method != "autograd":
            return super().approximate_at(closure, params, loss, want_loss)
        (distribution,) = self.settings.values(params, "distribution")
        seeds = self.step_seeds(params)
        base = [p.detach().clone() for p in params]
        res = evaluate_points(closure, params, [base], backward=True)[0]
        assert res.grads is not None
        true_grad = [g.to(dtype=b.dtype, device=b.device) for g, b in zip(res.grads, base)]
        from ...core.directions import make_direction
        cs = []
        for s in seeds:
            d = make_direction(distribution[0], s, base)
            cs.append(float(sum((gi * di).sum() for gi, di in zip(true_grad, d))))
        grads = self.combine(base, seeds, cs, distribution[0], [1.0] * len(base))
        loss = as_float(res.loss)
        return grads, loss, loss
