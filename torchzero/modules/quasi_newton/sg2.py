"""SG2: Spall's second-order stochastic gradient method (the gradient-based form of 2SPSA)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import Transform
from ...linalg import Dense
from ...utils.params import tensors_to_vec, vec_to_tensors


class SG2(Transform):
    """Second-order stochastic gradient (2SG, the gradient-measurement form of Spall's 2SPSA).

    The Hessian is estimated from gradient differences along random simultaneous perturbations.
    With ``Delta`` a Rademacher vector (entries +-1, so ``Delta^-1 = Delta`` element-wise), one
    estimate is

        dG     = (g(x + h Delta) - g(x - h Delta)) / (2h)
        H_hat  = (dG Delta^T + Delta dG^T) / 2 + damping I

    On a quadratic with Hessian ``A``, ``dG = A Delta`` exactly and ``E[H_hat] = A + damping I``
    (``E[Delta Delta^T] = I``). Each time the estimate is refreshed, ``n_samples`` independent estimates are averaged
    (``n_first_step_samples`` the first time). The running estimate is

        H_bar_1 = H_hat_1
        H_bar_k = k/(k+1) H_bar_{k-1} + H_hat_k/(k+1)     (beta=None)
        H_bar_k = beta H_bar_{k-1} + (1 - beta) H_hat_k   (exponential average)

    where ``k = 1, 2, ...`` numbers the refreshes (one every ``update_freq`` steps). The first
    line is Spall's recursion started from ``H_bar_0 = H_hat_1``. For the first ``start_step``
    refreshes the average holds too few estimates to be a reliable preconditioner, and the step is
    the update ``u`` (the gradient, or the output of ``inner``) scaled by
    ``1 / |tr(H_bar)|`` (at most ``1 / lambda_max`` when ``H_bar`` is positive semidefinite; the
    absolute value keeps the step downhill when a noisy estimate has a negative trace).
    Afterwards it is the Newton-like step ``H_bar^+ u`` (minimum-norm least-squares solution of
    ``H_bar d = u``).

    ``H_bar`` is not forced to be positive definite: on non-convex problems wrap SG2 in a trust
    region (``tz.m.LevenbergMarquardt(tz.m.SG2())``, which reads ``H_bar`` through ``get_H``) or
    follow it with a line search. Each refresh costs ``2 n_samples`` gradient evaluations at
    perturbed points (one batch through ``objective.evaluate_batch``) besides the gradient at
    ``x``; a closure is required.

    References:
        Spall, J. C. (2000). "Adaptive stochastic approximation by the simultaneous perturbation
        method". IEEE Transactions on Automatic Control 45(10), 1839-1853, doi:10.1109/TAC.2000.880982.
        Spall, J. C. (2009). "Feedback and weighting mechanisms for improving Jacobian estimates in
        the adaptive simultaneous perturbation algorithm". IEEE TAC 54(6), 1216-1229.

    Args:
        n_samples: Hessian estimates averaged at each refresh.
        n_first_step_samples: Hessian estimates averaged at the first refresh.
        start_step: number of refreshes after which the Newton-like step replaces the scaled
            gradient step (0 uses it from the first step).
        beta: exponential-average factor for the Hessian estimate; ``None`` for Spall's running
            average.
        damping: added to the diagonal of each estimate.
        h: perturbation size.
        seed: seed of the perturbations (``None`` uses the global generator).
        update_freq: refresh the Hessian estimate every this many steps.
        inner: module(s) whose output is preconditioned instead of the gradient.

    Examples:
        2SG with a trust region::

            opt = tz.Optimizer(model.parameters(), tz.m.LevenbergMarquardt(tz.m.SG2(beta=0.75, n_samples=4)))
    """

    def __init__(self, n_samples: int = 1, n_first_step_samples: int = 10, start_step: int = 10,
                 beta: float | None = None, damping: float = 1e-4, h: float = 1e-2, seed=None,
                 update_freq: int = 1, inner: Chainable | None = None):
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        if int(n_first_step_samples) < 1:
            raise ValueError(f"n_first_step_samples must be >= 1, got {n_first_step_samples}")
        if int(start_step) < 0:
            raise ValueError(f"start_step must be >= 0, got {start_step}")
        if beta is not None and not 0 <= beta <= 1:
            raise ValueError(f"beta must be None or in [0, 1], got {beta}")
        if not h > 0:
            raise ValueError(f"h must be positive, got {h}")
        defaults = dict(n_samples=n_samples, n_first_step_samples=n_first_step_samples, start_step=start_step,
                        beta=beta, damping=damping, h=h, seed=seed)
        super().__init__(defaults, update_freq=update_freq, inner=inner)

    def _estimate(self, objective: Objective, s: Mapping[str, Any], n_samples: int) -> torch.Tensor:
        """The average of ``n_samples`` symmetrised simultaneous-perturbation Hessian estimates."""
        params = objective.params
        h = float(s["h"])
        gen = self.get_generator(params[0].device, s["seed"])
        x = [p.detach() for p in params]
        deltas, points = [], []
        for _ in range(n_samples):
            d = [torch.empty_like(xi).bernoulli_(0.5, generator=gen).mul_(2).sub_(1) for xi in x]
            deltas.append(tensors_to_vec(d))
            points.append([xi + h * di for xi, di in zip(x, d)])
            points.append([xi - h * di for xi, di in zip(x, d)])
        results = objective.evaluate_batch(points, backward=True)
        ref = deltas[0]
        diffs = []
        for plus, minus in zip(results[0::2], results[1::2]):
            if plus.grads is None or minus.grads is None:
                raise RuntimeError("SG2 needs gradients at the perturbed points, the evaluator returned none")
            gp = tensors_to_vec(plus.grads).to(ref)
            gm = tensors_to_vec(minus.grads).to(ref)
            diffs.append(gp.sub_(gm))
        D = torch.stack(deltas, 1)                   # n x m perturbations
        G = torch.stack(diffs, 1).div_(2 * h)        # n x m gradient differences / 2h
        M = G @ D.T
        H = (M + M.T).div_(2 * n_samples)
        if s["damping"] != 0:
            H.diagonal().add_(s["damping"])
        return H

    def update_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        s = settings[0]
        gs = self.global_state
        k = gs.get("num_estimates", 0)
        H_hat = self._estimate(objective, s, int(s["n_first_step_samples"] if k == 0 else s["n_samples"]))
        H = gs.get("H")
        if H is not None and k > 0:
            # a new tensor (H_hat's storage): operators handed out by get_H keep their matrix
            w = 1 / (k + 2) if s["beta"] is None else 1 - s["beta"]
            H_hat.lerp_(H, 1 - w)  # w H_hat + (1 - w) H
        gs["H"] = H_hat
        gs["num_estimates"] = k + 1
        gs.pop("H_pinv", None)

    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        gs = self.global_state
        H = gs["H"]
        u = tensors_to_vec(objective.peek_updates()).to(H)
        if gs["num_estimates"] <= settings[0]["start_step"]:
            tr = float(torch.trace(H).abs())
            d = u / tr if tr > 0 and tr < float("inf") else u
        else:
            P = gs.get("H_pinv")
            if P is None:
                P = gs["H_pinv"] = torch.linalg.pinv(H, hermitian=True)
            d = P @ u
        objective.set_updates(vec_to_tensors(d, objective.params), owned=True)
        return objective

    def get_H(self, objective: Objective | None = None) -> Dense | None:
        H = self.global_state.get("H")
        return None if H is None else Dense(H)
