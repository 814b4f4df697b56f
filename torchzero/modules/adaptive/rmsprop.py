"""RMSprop."""
from __future__ import annotations

from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import TensorTransform
from ...utils.foreach import map_scalar, scalar_or_list
from .adagrad import _fused_or_scaled


class RMSprop(TensorTransform):
    """RMSprop: divides the update by the root of an exponential moving average of squared gradients.

    With input ``g``, ``a = smoothing``, step ``t`` and ``p = pow``::

        v <- a v + (1 - a) |g|^p                  (v <- |g|^p on the first step with init="update")
        amsgrad:   v_max <- max(v_max, v), used in place of v below
        centered:  m <- a m + (1 - a) g,  v <- v - m^2
        debias:    v <- v / (1 - a^t)          (after centering: the mean is not debiased separately,
                                                which would make the first variance exactly zero)
        update = g / (v^(1/p) + eps)

    With the defaults, followed by ``LR(lr)`` this is ``torch.optim.RMSprop(lr=lr, alpha=smoothing,
    eps=eps, centered=centered)``.

    Tieleman & Hinton, 2012, "Lecture 6.5 - RMSprop: divide the gradient by a running average of its
    recent magnitude", COURSERA: Neural Networks for Machine Learning; centered variant: Graves, 2013,
    "Generating Sequences With Recurrent Neural Networks", arXiv:1308.0850.

    Args:
        smoothing: decay ``a`` of the moving averages.
        eps: added to the denominator.
        centered: subtract the square of a moving average of the gradient (a variance estimate).
        debias: divide the averages by ``1 - a^t`` as Adam does.
        amsgrad: divide by the running maximum of the average of squares.
        init: ``"zeros"`` starts the averages at zero, ``"update"`` at the first input.
        inner: module(s) applied to the update after the averages are updated and before the division.
        exp_avg_sq_tfm: module(s) applied to a copy of the average of squares before it is used.
        pow: power of the gradients and of the root.
    """

    inplace = False

    def __init__(self, smoothing: float = 0.99, eps: float = 1e-8, centered: bool = False, debias: bool = False,
                 amsgrad: bool = False, init: Literal["zeros", "update"] = "zeros", inner: Chainable | None = None,
                 exp_avg_sq_tfm: Chainable | None = None, pow: float = 2):
        if init not in ("zeros", "update"):
            raise ValueError(f"init must be 'zeros' or 'update', got {init!r}")
        super().__init__(dict(smoothing=smoothing, eps=eps, centered=centered, debias=debias, amsgrad=amsgrad, init=init,
                              pow=pow), inner=inner)
        if exp_avg_sq_tfm is not None:
            self.set_child("exp_avg_sq", exp_avg_sq_tfm)

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings):
        smoothing, centered, amsgrad, init, pw = self.settings.values(params, "smoothing", "centered", "amsgrad", "init", "pow")
        step = self.global_state["step"] = self.global_state.get("step", 0) + 1
        a = scalar_or_list(smoothing)
        pw = scalar_or_list(pw)
        first_from_update = step == 1 and any(i == "update" for i in init)
        sq = self.get_state(params, "exp_avg_sq")
        if isinstance(pw, list):
            powed = [t.abs().pow(q) for t, q in zip(tensors, pw)]
        else:
            powed = None if pw == 2 else torch._foreach_pow(torch._foreach_abs(tensors), pw)
        if first_from_update:
            a_list = [0.0 if i == "update" else s for i, s in zip(init, smoothing)]
            a = scalar_or_list(a_list)
        one_minus = map_scalar(lambda b: 1 - b, a)
        torch._foreach_mul_(sq, a)
        if powed is None:
            torch._foreach_addcmul_(sq, tensors, tensors, one_minus)
        else:
            torch._foreach_add_(sq, torch._foreach_mul(powed, one_minus))
        if any(centered):
            idx = [i for i, c in enumerate(centered) if c]
            ps = [params[i] for i in idx]
            ga = self.get_state(ps, "exp_avg")
            w = one_minus if not isinstance(one_minus, list) else [one_minus[i] for i in idx]
            torch._foreach_lerp_(ga, [tensors[i] for i in idx], w)
        if any(amsgrad):
            idx = [i for i, c in enumerate(amsgrad) if c]
            mx = self.get_state([params[i] for i in idx], "max_exp_avg_sq")
            torch._foreach_maximum_(mx, [sq[i] for i in idx])

    def apply_states(self, objective: Objective, states: Any, settings: Any) -> Objective:
        if self._concat_params:
            return super().apply_states(objective, states, settings)
        params = objective.params
        tensors = objective.peek_updates()
        smoothing, eps, centered, debias, amsgrad, pw = self.settings.values(
            params, "smoothing", "eps", "centered", "debias", "amsgrad", "pow")
        step = self.global_state.get("step", 1)
        st = self.state
        v = [st[p]["max_exp_avg_sq"] if a else st[p]["exp_avg_sq"] for p, a in zip(params, amsgrad)]
        if "exp_avg_sq" in self.children:
            v = self.inner_step_tensors("exp_avg_sq", v, clone=True, params=params)
            owned = True
        else:
            owned = False
        if any(centered):
            if not owned:
                v = [x.clone() if c else x for x, c in zip(v, centered)]
                owned = all(centered)
            for i, (p, c) in enumerate(zip(params, centered)):
                if c:
                    m = st[p]["exp_avg"]
                    v[i].addcmul_(m, m, value=-1)
        pw_s = scalar_or_list(pw)
        if any(debias):
            corr = scalar_or_list([1 - s ** step if d else 1.0 for s, d in zip(smoothing, debias)])
            v = torch._foreach_div(v, corr)
            owned = True
        if isinstance(pw_s, list):
            denom = [x.pow(1 / q) for x, q in zip(v, pw)]
        elif pw_s == 2:
            if owned:
                torch._foreach_sqrt_(v)
                denom = v
            else:
                denom = torch._foreach_sqrt(v)
        else:
            denom = torch._foreach_pow(v, 1 / pw_s)
        torch._foreach_add_(denom, scalar_or_list(eps))
        return _fused_or_scaled(objective, tensors, denom, [1.0] * len(params))
