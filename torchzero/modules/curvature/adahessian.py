"""AdaHessian."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import Transform
from .hutchinson import Distribution, HVPMethod, check_args, scheduled_hutchinson


def block_average(d: torch.Tensor, block_size: int | None) -> torch.Tensor:
    """Averages ``d`` (the magnitude of a Hessian-diagonal estimate) over blocks of entries (AdaHessian's spatial averaging).

    * ``block_size=None``: a tensor with 3+ dims is averaged over its dims after the first two (the
      spatial dims of a convolution kernel, as in the paper); other tensors are returned unchanged;
    * ``block_size=b``: a tensor with 2+ dims is averaged over consecutive blocks of ``b`` entries
      along dim 0 (the last block holds what is left); each entry gets its block's mean.
    """
    if block_size is None:
        if d.ndim < 3:
            return d
        return d.mean(dim=tuple(range(2, d.ndim)), keepdim=True).expand_as(d)
    if d.ndim < 2:
        return d
    b = int(block_size)
    n = d.shape[0]
    if b <= 1:
        return d
    full = (n // b) * b
    parts = []
    if full:
        head = d[:full].reshape(n // b, b, *d.shape[1:]).mean(1, keepdim=True)
        parts.append(head.expand(n // b, b, *d.shape[1:]).reshape(full, *d.shape[1:]))
    if full < n:
        tail = d[full:]
        parts.append(tail.mean(0, keepdim=True).expand_as(tail))
    return torch.cat(parts) if len(parts) > 1 else parts[0]


class AdaHessian(Transform):
    """AdaHessian (Yao, Gholami, Shen, Mustafa, Keutzer & Mahoney, 2021, "ADAHESSIAN: An Adaptive
    Second Order Optimizer for Machine Learning", AAAI; arXiv:2006.00719).

    Adam whose second moment is built from a Hutchinson estimate of the Hessian diagonal instead of
    squared gradients. Every ``update_freq`` steps, with ``k = n_samples`` random vectors ``z_i``
    (``E[z z^T] = I``) and ``H`` the Hessian at the current point::

        D = (1/k) sum_i z_i * (H z_i)          (just H z_i with zHz=False)
        D <- spatial / block average of |D|     (``averaging``, see below)
        v <- beta2 v + (1 - beta2) D^2

    and on every step, with ``g`` the incoming update and ``t`` the step::

        m <- beta1 m + (1 - beta1) g
        update = (m / (1 - beta1^t)) / ((sqrt(v / (1 - beta2^s)))^k_h + eps)

    where ``s`` counts the Hessian updates and ``k_h = hessian_power`` (the paper's ``k``). Debiasing
    can be switched off. Averaging (paper, section 3.2) smooths the estimate: tensors with 3+ dims are
    averaged over their trailing (spatial) dims, or, with ``block_size``, tensors with 2+ dims are
    averaged over blocks of ``block_size`` consecutive entries along dim 0.

    Needs a closure that accepts ``backward`` (``closure(False)`` must return a loss with its graph for
    the autograd methods). The Hessian-vector products use the current parameters, so AdaHessian is
    usually the first module of the chain.

    Args:
        beta1: decay of the first moment.
        beta2: decay of the second moment of the Hessian-diagonal estimates.
        averaging: average the estimate over blocks (can be set per parameter).
        block_size: block size of the averaging along dim 0 (None: spatial averaging).
        update_freq: estimate the Hessian diagonal every this many steps.
        eps: added to the denominator.
        hessian_power: power of the square root of the second moment.
        distribution: distribution of the random vectors.
        hvp_method: ``"autograd"`` / ``"batched_autograd"`` (exact products), ``"fd_forward"`` or
            ``"fd_central"`` (finite differences of gradients).
        h: finite-difference step.
        n_samples: random vectors per estimate.
        zHz: use ``z * Hz`` (the Hutchinson diagonal); False uses ``Hz``.
        debias: bias-correct both moments.
        seed: seed of the random vectors (None: the global generator).
        exp_avg_tfm: module(s) applied to a copy of the first moment before it is used.
        D_exp_avg_sq_tfm: module(s) applied to a copy of the second moment before it is used.
        inner: module(s) applied to the update before the first moment (as documented in the seed).
    """

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, averaging: bool = True, block_size: int | None = None,
                 update_freq: int = 1, eps: float = 1e-8, hessian_power: float = 1, distribution: Distribution = "rademacher",
                 hvp_method: HVPMethod = "autograd", h: float = 1e-3, n_samples=1, zHz: bool = True, debias: bool = True,
                 seed: int | None = None, exp_avg_tfm: Chainable | None = None, D_exp_avg_sq_tfm: Chainable | None = None,
                 inner: Chainable | None = None):
        check_args(distribution, hvp_method, n_samples, update_freq)
        if block_size is not None and int(block_size) < 1:
            raise ValueError(f"block_size must be >= 1 or None, got {block_size}")
        super().__init__(dict(beta1=beta1, beta2=beta2, averaging=averaging, block_size=block_size, eps=eps,
                              hessian_power=hessian_power, debias=debias, distribution=distribution, hvp_method=hvp_method,
                              h=h, n_samples=int(n_samples), zHz=zHz, seed=seed, update_freq=int(update_freq)),
                         inner=inner, uses_grad=False)
        if exp_avg_tfm is not None:
            self.set_child("exp_avg", exp_avg_tfm)
        if D_exp_avg_sq_tfm is not None:
            self.set_child("D_exp_avg_sq", D_exp_avg_sq_tfm)

    def update_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        params = objective.params
        D = scheduled_hutchinson(self, objective, settings[0])
        if D is None:
            return
        D = [block_average(d.abs(), se["block_size"]) if se["averaging"] else d for d, se in zip(D, settings)]
        beta2 = [se["beta2"] for se in settings]
        v = self.get_state(params, "D_exp_avg_sq")
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, D, D, [1 - b for b in beta2])
        self.global_state["hessian_step"] = self.global_state.get("hessian_step", 0) + 1

    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        params = objective.params
        g = objective.peek_updates()
        t = self.global_state["apply_step"] = self.global_state.get("apply_step", 0) + 1
        s_h = max(self.global_state.get("hessian_step", 1), 1)
        beta1 = [se["beta1"] for se in settings]
        m = self.get_state(params, "exp_avg")
        torch._foreach_lerp_(m, g, [1 - b for b in beta1])
        v = self.get_state(params, "D_exp_avg_sq")
        if "exp_avg" in self.children:
            m = self.inner_step_tensors("exp_avg", m, clone=True, params=params)
        if "D_exp_avg_sq" in self.children:
            v = self.inner_step_tensors("D_exp_avg_sq", v, clone=True, params=params)
        out = []
        for mi, vi, se in zip(m, v, settings):
            if se["debias"]:
                denom = (vi / (1 - se["beta2"] ** s_h)).sqrt_()
                num = mi / (1 - se["beta1"] ** t)
            else:
                denom = vi.sqrt()
                num = mi.clone()
            if se["hessian_power"] != 1:
                denom.pow_(se["hessian_power"])
            out.append(num.div_(denom.add_(se["eps"])))
        objective.set_updates(out, owned=True)
        return objective
