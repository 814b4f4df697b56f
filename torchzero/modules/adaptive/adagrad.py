"""Adagrad and Adagrad-Norm."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import TensorTransform
from ...utils.foreach import map_scalar, scalar_or_list


def _fused_or_scaled(objective: Objective, numer: Sequence[torch.Tensor], denom: list[torch.Tensor], step_size: list[float]) -> Objective:
    """Finishes ``update = step_size * numer / denom``: writes the step into the parameters when this is
    the last module (honouring a final ``LR``), else sets the update."""
    params = objective.params
    if objective.is_last and not objective.skip_update:
        lrs = objective.last_module_lrs
        if lrs is not None:
            step_size = [s * lr for s, lr in zip(step_size, lrs)]
        ss = scalar_or_list(step_size)
        with torch.no_grad():
            torch._foreach_addcdiv_(params, list(numer), denom, map_scalar(lambda v: -v, ss))
        objective.skip_update = True
        objective.stop = True
        return objective
    out = torch._foreach_div(list(numer), denom)
    ss = scalar_or_list(step_size)
    if isinstance(ss, list) or ss != 1:
        torch._foreach_mul_(out, ss)
    objective.set_updates(out, owned=True)
    return objective


class Adagrad(TensorTransform):
    """Adagrad: divides the update by the root of the running sum of past squared gradients.

    With input ``g``, step ``t`` (from 1) and ``p = pow``::

        G <- G + |g|^p                              (G starts at initial_accumulator_value)
        D = G^(1/p) + eps   (D = G + eps with use_sqrt=False)
        update = alpha / (1 + (t - 1) * lr_decay) * g / D

    With the defaults, followed by ``LR(lr)`` this is ``torch.optim.Adagrad(lr=lr, lr_decay=...,
    initial_accumulator_value=..., eps=...)``.

    Duchi, Hazan & Singer, 2011, "Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization", JMLR 12, pp. 2121-2159.

    Args:
        lr_decay: step size decay, ``alpha / (1 + (t - 1) * lr_decay)``.
        initial_accumulator_value: initial value of the accumulator ``G``.
        eps: added to the denominator.
        alpha: step size.
        inner: module(s) applied to the update after the accumulator is updated and before the division.
        accumulator_tfm: module(s) applied to a copy of the accumulator before it is used.
        pow: power of the gradients and of the root of the accumulator.
        use_sqrt: take the ``1/pow`` root of the accumulator.
    """

    inplace = False

    def __init__(self, lr_decay: float = 0, initial_accumulator_value: float = 0, eps: float = 1e-10, alpha: float = 1,
                 inner: Chainable | None = None, accumulator_tfm: Chainable | None = None, pow: float = 2, use_sqrt: bool = True):
        super().__init__(dict(lr_decay=lr_decay, initial_accumulator_value=initial_accumulator_value, eps=eps, alpha=alpha,
                              pow=pow, use_sqrt=use_sqrt), inner=inner)
        if accumulator_tfm is not None:
            self.set_child("accumulator", accumulator_tfm)

    def _accumulators(self, params: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for p in params:
            st = self.state[p]
            acc = st.get("accumulator")
            if acc is None:
                acc = st["accumulator"] = torch.full_like(p, self.settings[p]["initial_accumulator_value"])
            out.append(acc)
        return out

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings):
        acc = self._accumulators(params)
        pw = scalar_or_list(self.settings.values(params, "pow")[0])
        if pw == 2:
            torch._foreach_addcmul_(acc, tensors, tensors)
        elif isinstance(pw, list):
            for a, t, q in zip(acc, tensors, pw):
                a.add_(t.abs().pow_(q))
        else:
            torch._foreach_add_(acc, torch._foreach_pow(torch._foreach_abs(tensors), pw))
        self.global_state["step"] = self.global_state.get("step", 0) + 1

    def apply_states(self, objective: Objective, states: Any, settings: Any) -> Objective:
        if self._concat_params:
            return super().apply_states(objective, states, settings)
        params = objective.params
        tensors = objective.peek_updates()
        eps, alpha, lr_decay, pw, use_sqrt = self.settings.values(params, "eps", "alpha", "lr_decay", "pow", "use_sqrt")
        step = self.global_state.get("step", 1)
        acc = self._accumulators(params)
        if "accumulator" in self.children:
            acc = self.inner_step_tensors("accumulator", acc, clone=True, params=params)
        pw_s = scalar_or_list(pw)
        if all(use_sqrt):
            if pw_s == 2:
                denom = torch._foreach_sqrt(acc)
            else:
                denom = torch._foreach_pow(acc, map_scalar(lambda q: 1 / q, pw_s))
        else:
            denom = [a.pow(1 / q) if u else a.clone() for a, q, u in zip(acc, pw, use_sqrt)]
        torch._foreach_add_(denom, scalar_or_list(eps))
        step_size = [a / (1 + (step - 1) * d) for a, d in zip(alpha, lr_decay)]
        return _fused_or_scaled(objective, tensors, denom, step_size)


class AdagradNorm(TensorTransform):
    """Adagrad-Norm: one accumulator of squared gradient norms per tensor (or for all parameters).

    With input ``g`` (one tensor, or all of them concatenated with ``layerwise=False``) and step ``t``::

        b <- b + ||g||^2                                  (b starts at initial_accumulator_value)
        or, with beta:  b <- beta b + (1 - beta) ||g||^2,  debiased by 1 - beta^t if beta_debias
        update = alpha / (1 + (t - 1) * lr_decay) * g / (sqrt(b) + eps)   (b + eps with use_sqrt=False)

    Ward, Wu & Bottou, 2019, "AdaGrad stepsizes: sharp convergence over nonconvex landscapes",
    ICML, arXiv:1806.01811.

    Args:
        lr_decay: step size decay, ``alpha / (1 + (t - 1) * lr_decay)``.
        initial_accumulator_value: initial value of the accumulator.
        eps: added to the denominator.
        beta: if given, an exponential moving average of squared norms replaces the sum.
        beta_debias: debias that moving average.
        layerwise: one accumulator per tensor; False: one for all parameters.
        use_sqrt: divide by the root of the accumulator (else by the accumulator).
        alpha: step size.
        inner: module(s) applied to the update after the accumulator is updated and before the division.
    """

    def __init__(self, lr_decay: float = 0, initial_accumulator_value: float = 0, eps: float = 1e-10, beta: float | None = None,
                 beta_debias: bool = True, layerwise: bool = True, use_sqrt: bool = True, alpha: float = 1,
                 inner: Chainable | None = None):
        super().__init__(dict(lr_decay=lr_decay, initial_accumulator_value=initial_accumulator_value, eps=eps, beta=beta,
                              beta_debias=beta_debias, use_sqrt=use_sqrt, alpha=alpha), inner=inner)
        self._layerwise = layerwise

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings):
        step = self.global_state["step"] = self.global_state.get("step", 0) + 1
        sq = [torch.linalg.vector_norm(t) ** 2 for t in tensors]
        s0 = settings[0]
        if self._layerwise:
            for p, st, s, n2 in zip(params, states, settings, sq):
                acc = st.get("accumulator")
                if acc is None:
                    acc = st["accumulator"] = torch.full((), float(s["initial_accumulator_value"]), dtype=p.dtype, device=p.device)
                _accumulate(acc, n2, s["beta"])
                st["denom"] = _denominator(acc, s, step)
        else:
            total = torch.stack([n.to(sq[0].dtype) for n in sq]).sum() if len(sq) > 1 else sq[0]
            acc = self.global_state.get("accumulator")
            if acc is None:
                acc = self.global_state["accumulator"] = torch.full((), float(s0["initial_accumulator_value"]), dtype=total.dtype, device=total.device)
            _accumulate(acc, total, s0["beta"])
            self.global_state["denom"] = _denominator(acc, s0, step)

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        step = self.global_state.get("step", 1)
        for t, st, s in zip(tensors, states, settings):
            denom = st["denom"] if self._layerwise else self.global_state["denom"]
            t.div_(denom.to(t.device))
            scale = s["alpha"] / (1 + (step - 1) * s["lr_decay"])
            if scale != 1:
                t.mul_(scale)
        return tensors


def _accumulate(acc: torch.Tensor, n2: torch.Tensor, beta: float | None) -> None:
    if beta is None:
        acc.add_(n2)
    else:
        acc.mul_(beta).add_(n2, alpha=1 - beta)


def _denominator(acc: torch.Tensor, s: Any, step: int) -> torch.Tensor:
    v = acc
    if s["beta"] is not None and s["beta_debias"]:
        v = v / (1 - s["beta"] ** step)
    v = v.sqrt() if s["use_sqrt"] else v.clone()
    return v.add_(s["eps"])
