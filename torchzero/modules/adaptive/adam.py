"""Adam."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import TensorTransform
from ...utils.foreach import map_scalar, scalar_or_list


class Adam(TensorTransform):
    """Adam (Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization", arXiv:1412.6980).

    With gradient ``g``, step ``t`` and ``p = pow`` (2 for Adam)::

        m <- beta1 m + (1 - beta1) g
        v <- beta2 v + (1 - beta2) |g|^p            (v_max <- max(v_max, v) with amsgrad)
        update = alpha * (m / (1 - beta1^t)) / ((v / (1 - beta2^t))^(1/p) + eps)

    Debiasing (the ``1 - beta^t`` terms) can be switched off. Followed by ``LR(lr)`` this is
    ``torch.optim.Adam``: the denominator and step size are formed in the same order. When Adam is
    the last module (or the last before ``LR``), its settings are the same for every parameter,
    and the parameters share a device and a floating dtype, the whole step runs in torch's fused
    Adam kernel (one pass over memory; bit for bit ``torch.optim.Adam(fused=True)``, which agrees
    with the default ``torch.optim.Adam`` to float rounding). Otherwise it runs as foreach
    kernels, bit for bit the default ``torch.optim.Adam``.

    Args:
        beta1: decay of the first moment.
        beta2: decay of the second moment.
        eps: added to the denominator.
        amsgrad: divide by the running maximum of the second moment.
        alpha: step size multiplier.
        debias: apply bias correction.
        exp_avg_tfm: module(s) applied to a copy of the first moment before it is used.
        exp_avg_sq_tfm: module(s) applied to a copy of the second moment before it is used.
        pow: power of the second moment and of its root.
    """

    inplace = False

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, amsgrad: bool = False,
                 alpha: float = 1.0, debias: bool = True, exp_avg_tfm: Chainable | None = None,
                 exp_avg_sq_tfm: Chainable | None = None, pow: float = 2):
        super().__init__(dict(beta1=beta1, beta2=beta2, eps=eps, amsgrad=amsgrad, alpha=alpha, debias=debias, pow=pow))
        if exp_avg_tfm is not None:
            self.set_child("exp_avg", exp_avg_tfm)
        if exp_avg_sq_tfm is not None:
            self.set_child("exp_avg_sq", exp_avg_sq_tfm)

    def step(self, objective: Objective) -> Objective:
        if self._fused_step(objective):
            return objective
        return super().step(objective)

    def _fused_step(self, objective: Objective) -> bool:
        """The whole step (moments and parameters) in ``torch._fused_adam_`` when it applies."""
        if not objective.is_last or objective.skip_update or self.children or self._concat_params or self._update_freq != 1:
            return False
        params = objective.params
        dev, dt = params[0].device, params[0].dtype
        if not dt.is_floating_point or any(p.device != dev or p.dtype != dt for p in params):
            return False
        vals = self.settings.values(params, "beta1", "beta2", "eps", "alpha", "amsgrad", "debias", "pow")
        uniform = [scalar_or_list(v) for v in vals]
        if any(isinstance(u, list) for u in uniform):
            return False
        beta1, beta2, eps, alpha, amsgrad, debias, pw = uniform
        lrs = objective.last_module_lrs
        lr = alpha if lrs is None else scalar_or_list([alpha * l for l in lrs])
        if pw != 2 or not debias or isinstance(lr, list):
            return False
        # the same bookkeeping as update(), so the two paths can alternate
        self.global_state["__initialized"] = True
        self.global_state["__step"] = self.global_state.get("__step", 0) + 1
        step = self.global_state["step"] = self.global_state.get("step", 0) + 1
        grads = objective.peek_updates()
        exp_avg = self.get_state(params, "exp_avg")
        exp_avg_sq = self.get_state(params, "exp_avg_sq")
        max_sq = self.get_state(params, "max_exp_avg_sq") if amsgrad else []
        steps = [torch.tensor(float(step), device=dev)] * len(params)
        with torch.no_grad():
            torch._fused_adam_(params, grads, exp_avg, exp_avg_sq, max_sq, steps, lr=float(lr), beta1=float(beta1),
                               beta2=float(beta2), weight_decay=0.0, eps=float(eps), amsgrad=bool(amsgrad), maximize=False)
        objective.skip_update = True
        objective.stop = True
        return True

    def multi_tensor_update(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                            states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        beta1, beta2, amsgrad, pw = self.settings.values(params, "beta1", "beta2", "amsgrad", "pow")
        step = self.global_state.get("step", 0) + 1
        exp_avg = self.get_state(params, "exp_avg")
        exp_avg_sq = self.get_state(params, "exp_avg_sq")
        b1 = scalar_or_list(beta1)
        b2 = scalar_or_list(beta2)
        pw = scalar_or_list(pw)
        torch._foreach_lerp_(exp_avg, tensors, map_scalar(lambda b: 1 - b, b1))
        torch._foreach_mul_(exp_avg_sq, b2)
        if pw == 2:
            torch._foreach_addcmul_(exp_avg_sq, tensors, tensors, map_scalar(lambda b: 1 - b, b2))
        else:
            powed = torch._foreach_pow(torch._foreach_abs(tensors), pw)
            torch._foreach_add_(exp_avg_sq, torch._foreach_mul(powed, map_scalar(lambda b: 1 - b, b2)))
        if any(amsgrad):
            idx = [i for i, a in enumerate(amsgrad) if a]
            mx = self.get_state([params[i] for i in idx], "max_exp_avg_sq")
            torch._foreach_maximum_(mx, [exp_avg_sq[i] for i in idx])
        self.global_state["step"] = step

    def apply_states(self, objective: Objective, states: Any, settings: Any) -> Objective:
        params = objective.params
        if self._concat_params:
            return super().apply_states(objective, states, settings)
        eps, alpha, amsgrad, debias, beta1, beta2, pw = self.settings.values(
            params, "eps", "alpha", "amsgrad", "debias", "beta1", "beta2", "pow")
        step = self.global_state.get("step", 1)
        exp_avg = self.get_state(params, "exp_avg")
        second = self.get_state(params, "exp_avg_sq")
        if any(amsgrad):
            second = [self.state[p]["max_exp_avg_sq"] if a else s for p, a, s in zip(params, amsgrad, second)]
        if "exp_avg" in self.children:
            exp_avg = self.inner_step_tensors("exp_avg", exp_avg, clone=True, params=params)
        if "exp_avg_sq" in self.children:
            second = self.inner_step_tensors("exp_avg_sq", second, clone=True, params=params)

        pw = scalar_or_list(pw)
        # denominator: (v^(1/p) / bc2^(1/p)) + eps
        denom = torch._foreach_sqrt(second) if pw == 2 else torch._foreach_pow(second, map_scalar(lambda q: 1 / q, pw))
        bc2_root = [((1 - b2 ** step) ** (1 / q)) if d else 1.0 for b2, d, q in zip(beta2, debias, _as_list(pw, len(params)))]
        bc2_root = scalar_or_list(bc2_root)
        if bc2_root != 1.0:
            torch._foreach_div_(denom, bc2_root)
        torch._foreach_add_(denom, scalar_or_list(eps))
        fuse = objective.is_last and not objective.skip_update
        lrs = objective.last_module_lrs if fuse and objective.last_module_lrs is not None else [1.0] * len(params)
        # lr * alpha / (1 - beta1^t), in the order torch forms it
        step_size = [(a * lr) / (1 - b1 ** step) if d else a * lr for a, lr, b1, d in zip(alpha, lrs, beta1, debias)]

        if fuse:
            ss = scalar_or_list(step_size)
            with torch.no_grad():
                torch._foreach_addcdiv_(params, exp_avg, denom, map_scalar(lambda v: -v, ss))
            objective.skip_update = True
            objective.stop = True
            return objective

        out = torch._foreach_div(exp_avg, denom)
        torch._foreach_mul_(out, scalar_or_list(step_size))
        objective.set_updates(out, owned=True)
        return objective


def _as_list(x: Any, n: int) -> list[Any]:
    return x if isinstance(x, list) else [x] * n
