"""ESGD: equilibrated stochastic gradient descent."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import Transform
from .hutchinson import Distribution, HVPMethod, check_args, scheduled_hutchinson


class ESGD(Transform):
    """Equilibrated SGD (Dauphin, de Vries & Bengio, 2015, "Equilibrated adaptive learning rates for
    non-convex optimization", NeurIPS; arXiv:1502.04390).

    Adagrad-like, but the accumulator sums squared Hessian-vector products with random vectors
    instead of squared gradients: ``E[(H z)^2] = diag(H^2)`` for ``E[z z^T] = I``, whose square root is
    the equilibration preconditioner (row norms of ``H``), which stays positive where ``H`` is
    indefinite. Every ``update_freq`` steps (first on the first step), with ``k = n_samples`` random
    vectors ``z_i``::

        D = (1/k) sum_i H z_i                   (z_i * H z_i with zHz=True)
        a <- a + D^2                            (beta None; i counts the estimates)
        a <- beta a + (1 - beta) D^2            (otherwise, divided by 1 - beta^i if beta_debias)

    and on every step, with ``g`` the output of ``inner`` (the incoming update without it)::

        update = g / (sqrt(a / i) + damping)    (sqrt(a_debiased) + damping with beta)

    Needs a closure that accepts ``backward``. The Hessian-vector products use the current
    parameters, so ESGD is usually the first module of the chain.

    Args:
        damping: added to the denominator.
        update_freq: estimate every this many steps.
        distribution: distribution of the random vectors.
        hvp_method: ``"autograd"`` / ``"batched_autograd"`` (exact products), ``"fd_forward"`` or
            ``"fd_central"`` (finite differences of gradients).
        h: finite-difference step.
        n_samples: random vectors per estimate.
        zHz: use ``z * Hz`` instead of ``Hz``.
        seed: seed of the random vectors (None: the global generator).
        beta: decay of an exponential moving average of the squared products; None averages all.
        beta_debias: bias-correct the moving average.
        inner: module(s) whose output is preconditioned.
        Hz_sq_acc_tfm: module(s) applied to a copy of the accumulator before it is used.
    """

    def __init__(self, damping: float = 1e-4, update_freq: int = 20, distribution: Distribution = "gaussian",
                 hvp_method: HVPMethod = "autograd", h: float = 1e-3, n_samples=1, zHz: bool = False,
                 seed: int | None = None, beta: float | None = None, beta_debias: bool = True,
                 inner: Chainable | None = None, Hz_sq_acc_tfm: Chainable | None = None):
        check_args(distribution, hvp_method, n_samples, update_freq)
        super().__init__(dict(damping=damping, distribution=distribution, hvp_method=hvp_method, h=h,
                              n_samples=int(n_samples), zHz=zHz, seed=seed, beta=beta, beta_debias=beta_debias,
                              update_freq=int(update_freq)), inner=inner)
        if Hz_sq_acc_tfm is not None:
            self.set_child("Hz_sq_acc", Hz_sq_acc_tfm)

    def update_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        params = objective.params
        D = scheduled_hutchinson(self, objective, settings[0])
        if D is None:
            return
        acc = self.get_state(params, "Hz_sq_acc")
        for a, d, se in zip(acc, D, settings):
            if se["beta"] is None:
                a.addcmul_(d, d)
            else:
                a.mul_(se["beta"]).addcmul_(d, d, value=1 - se["beta"])
        self.global_state["n_estimates"] = self.global_state.get("n_estimates", 0) + 1

    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        params = objective.params
        g = objective.peek_updates()
        i = max(self.global_state.get("n_estimates", 1), 1)
        acc = self.get_state(params, "Hz_sq_acc")
        if "Hz_sq_acc" in self.children:
            acc = self.inner_step_tensors("Hz_sq_acc", acc, clone=True, params=params)
        out = []
        for gi, a, se in zip(g, acc, settings):
            beta = se["beta"]
            if beta is None:
                denom = (a / i).sqrt_()
            elif se["beta_debias"]:
                denom = (a / (1 - beta ** i)).sqrt_()
            else:
                denom = (a / i).sqrt_()
            out.append(gi / denom.add_(se["damping"]))
        objective.set_updates(out, owned=True)
        return objective
