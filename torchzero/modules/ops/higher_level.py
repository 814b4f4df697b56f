"""Moments of the update and Adam's bias corrections as separate modules.

Together with ``EMA`` they rebuild Adam (Kingma & Ba, 2015, "Adam: A Method for Stochastic
Optimization", arXiv:1412.6980)::

    tz.m.DivModules([tz.m.EMA(0.9), tz.m.Debias(beta1=0.9)],
                    [tz.m.EMASquared(0.999), tz.m.Sqrt(), tz.m.Debias2(0.999), tz.m.Add(1e-8)])
"""
from __future__ import annotations

import torch

from ...core.transform import TensorTransform
from ...utils.foreach import scalar_or_list
from .ema_sq import ema_sq_, root_debiased, sqrt_ema_sq_


def _split_by(flags: list[bool], *lists: list) -> tuple[list, ...]:
    idx = [i for i, f in enumerate(flags) if f]
    return tuple([lst[i] for i in idx] for lst in lists)


def _ema_sq_grouped(fn, tensors, v, beta, pw) -> None:
    """``fn`` (an EMA-of-squares update) once per distinct ``pow`` (once in the usual uniform case)."""
    first = pw[0]
    if all(q == first for q in pw):
        fn(tensors, v, scalar_or_list(beta), None, pow=first)
        return
    for p_ in set(pw):
        t, vv, bb = _split_by([q == p_ for q in pw], tensors, v, beta)
        fn(t, vv, scalar_or_list(bb), None, pow=p_)


class EMASquared(TensorTransform):
    """Exponential moving average of the squared update, ``v <- beta v + (1 - beta) |u|^pow``;
    outputs ``v`` (or its running maximum with ``amsgrad``).

    Args:
        beta: decay of the average.
        amsgrad: output the running maximum of ``v`` (Reddi, Kale & Kumar, 2018, "On the
            Convergence of Adam and Beyond", arXiv:1904.09237).
        pow: power of ``|u|``.
    """

    inplace = False
    EMA_SQ_FN = staticmethod(ema_sq_)

    def __init__(self, beta: float = 0.999, amsgrad=False, pow: float = 2):
        super().__init__(dict(beta=beta, amsgrad=amsgrad, pow=pow))

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings):
        beta, amsgrad, pw = self.settings.values(params, "beta", "amsgrad", "pow")
        v = self.get_state(params, "exp_avg_sq")
        _ema_sq_grouped(self.EMA_SQ_FN, tensors, v, beta, pw)
        if any(amsgrad):
            pa, va = _split_by(amsgrad, params, v)
            torch._foreach_maximum_(self.get_state(pa, "max_exp_avg_sq"), va)
        self.global_state["step"] = self.global_state.get("step", 0) + 1

    def _second_moment(self, params):
        (amsgrad,) = self.settings.values(params, "amsgrad")
        v = self.get_state(params, "exp_avg_sq")
        if any(amsgrad):
            v = [self.state[p]["max_exp_avg_sq"] if a else x for p, a, x in zip(params, amsgrad, v)]
        return v

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        return [x.clone() for x in self._second_moment(params)]


class SqrtEMASquared(EMASquared):
    """Root of the exponential moving average of the squared update: outputs
    ``v^(1/pow)`` with ``v <- beta v + (1 - beta) |u|^pow``, divided by Adam's bias correction
    ``(1 - beta^t)^(1/pow)`` when ``debiased``.

    Args:
        beta: decay of the average.
        amsgrad: use the running maximum of ``v``.
        debiased: apply the bias correction.
        pow: power of ``|u|`` and of the root.
    """

    SQRT_EMA_SQ_FN = staticmethod(sqrt_ema_sq_)

    def __init__(self, beta: float = 0.999, amsgrad=False, debiased: bool = False, pow: float = 2):
        TensorTransform.__init__(self, dict(beta=beta, amsgrad=amsgrad, debiased=debiased, pow=pow))

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        beta, debiased, pw = self.settings.values(params, "beta", "debiased", "pow")
        step = self.global_state.get("step", 1)
        v = self._second_moment(params)
        return _roots(v, beta, debiased, pw, step)


def _roots(v, beta, debiased, pw, step):
    """Per-tensor roots with per-tensor settings, grouped so uniform settings use one kernel each."""
    out: list = [None] * len(v)
    groups: dict = {}
    for i, key in enumerate(zip(debiased, pw)):
        groups.setdefault(key, []).append(i)
    for (d, p_), idx in groups.items():
        res = root_debiased([v[i] for i in idx], scalar_or_list([beta[i] for i in idx]), bool(d), step, p_)
        for i, r in zip(idx, res):
            out[i] = r
    return out


class CenteredEMASquared(TensorTransform):
    """Centered second moment: ``m <- beta m + (1 - beta) u``, ``v <- beta v + (1 - beta) |u|^pow``;
    outputs ``c = v - m^2`` (the running variance estimate of centered RMSProp; Graves, 2013,
    "Generating Sequences With Recurrent Neural Networks", arXiv:1308.0850).

    With ``amsgrad`` the output is the running maximum of ``c`` (starting from 0).

    Args:
        beta: decay of both averages.
        amsgrad: output the running maximum of ``c``.
        pow: power of ``|u|`` in ``v`` (``m`` is always squared).
    """

    inplace = False

    def __init__(self, beta: float = 0.99, amsgrad=False, pow: float = 2):
        super().__init__(dict(beta=beta, amsgrad=amsgrad, pow=pow))

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings):
        beta, amsgrad, pw = self.settings.values(params, "beta", "amsgrad", "pow")
        m, v = self.get_state(params, "exp_avg", "exp_avg_sq")
        b = scalar_or_list(beta)
        torch._foreach_lerp_(m, tensors, [1 - x for x in beta] if isinstance(b, list) else 1 - b)
        _ema_sq_grouped(ema_sq_, tensors, v, beta, pw)
        if any(amsgrad):
            pa, ma, va = _split_by(amsgrad, params, m, v)
            c = torch._foreach_addcmul(va, ma, ma, value=-1)
            torch._foreach_maximum_(self.get_state(pa, "max_centered"), c)
        self.global_state["step"] = self.global_state.get("step", 0) + 1

    def _centered(self, params):
        (amsgrad,) = self.settings.values(params, "amsgrad")
        m, v = self.get_state(params, "exp_avg", "exp_avg_sq")
        c = torch._foreach_addcmul(v, m, m, value=-1)
        if any(amsgrad):
            c = [self.state[p]["max_centered"].clone() if a else x for p, a, x in zip(params, amsgrad, c)]
        return c

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        return self._centered(params)


class CenteredSqrtEMASquared(CenteredEMASquared):
    """Root of the centered second moment of :class:`CenteredEMASquared`: ``max(c, 0)^(1/pow)``,
    divided by ``(1 - beta^t)^(1/pow)`` when ``debiased`` (for ``pow=2``, ``c >= 0`` up to
    rounding, which the clamp keeps from turning into NaN).

    Args:
        beta: decay of both averages.
        amsgrad: use the running maximum of ``c``.
        debiased: apply Adam's bias correction to ``c``.
        pow: power of ``|u|`` and of the root.
    """

    def __init__(self, beta: float = 0.99, amsgrad=False, debiased: bool = False, pow: float = 2):
        TensorTransform.__init__(self, dict(beta=beta, amsgrad=amsgrad, debiased=debiased, pow=pow))

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        beta, debiased, pw = self.settings.values(params, "beta", "debiased", "pow")
        c = self._centered(params)
        torch._foreach_clamp_min_(c, 0)
        return _roots(c, beta, debiased, pw, self.global_state.get("step", 1))


class Debias(TensorTransform):
    """Multiplies the update by Adam's bias corrections:
    ``alpha * (1 - beta2^t)^(1/pow) / (1 - beta1^t)`` (each factor only when its beta is given).

    ``t`` counts the steps of this module. Use the betas of the moving averages upstream, e.g.
    ``Debias(beta1=0.9)`` after ``EMA(0.9)``. Kingma & Ba, 2015, arXiv:1412.6980, Algorithm 1.

    Args:
        beta1: decay of the first moment, or None.
        beta2: decay of the second moment, or None.
        alpha: step size multiplier.
        pow: root taken of the second-moment correction.
    """

    def __init__(self, beta1: float | None = None, beta2: float | None = None, alpha: float = 1, pow: float = 2):
        super().__init__(dict(beta1=beta1, beta2=beta2, alpha=alpha, pow=pow))

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings):
        self.global_state["step"] = self.global_state.get("step", 0) + 1

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        t = self.global_state.get("step", 1)
        beta1, beta2, alpha, pw = self.settings.values(params, "beta1", "beta2", "alpha", "pow")
        factors = []
        for b1, b2, a, p_ in zip(beta1, beta2, alpha, pw):
            f = a
            if b1 is not None:
                f = f / (1 - b1 ** t)
            if b2 is not None:
                f = f * (1 - b2 ** t) ** (1 / p_)
            factors.append(f)
        f = scalar_or_list(factors)
        if f != 1:
            torch._foreach_mul_(tensors, f)
        return tensors


class Debias2(TensorTransform):
    """Divides the update by Adam's second-moment bias correction ``(1 - beta^t)^(1/pow)``.

    ``t`` counts the steps of this module; ``beta`` should be the decay of the second moment
    upstream (e.g. after ``EMASquared(0.999)`` and ``Sqrt()``). Kingma & Ba, 2015,
    arXiv:1412.6980.

    Args:
        beta: decay of the second moment.
        pow: root taken of the correction.
    """

    def __init__(self, beta: float = 0.999, pow: float = 2):
        super().__init__(dict(beta=beta, pow=pow))

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings):
        self.global_state["step"] = self.global_state.get("step", 0) + 1

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        t = self.global_state.get("step", 1)
        beta, pw = self.settings.values(params, "beta", "pow")
        corr = scalar_or_list([(1 - b ** t) ** (1 / p_) for b, p_ in zip(beta, pw)])
        torch._foreach_div_(tensors, corr)
        return tensors
