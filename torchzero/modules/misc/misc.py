"""Small transforms of the update: loss scaling, sign copying, grafting, differences and ratios of
consecutive updates, noise, random Hessian-vector products and keeping the best parameters."""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from ...core.module import Module
from ...core.objective import Objective
from ...core.transform import TensorTransform
from ...utils.foreach import scalar_or_list
from ._metrics import check_ord, metrics

Metric = Literal["mad", "std", "var", "sum", "l0", "l1", "l2", "l3", "l4", "linf"] | float | torch.Tensor
Distribution = Literal["normal", "gaussian", "uniform", "sphere", "rademacher"]


def loss_for(objective: Objective, backward: bool | None = None) -> Any:
    """The loss at the current parameters without a second closure call.

    When ``backward`` is None the gradient is computed along with the loss only if nobody has formed
    an update yet (modules further down the chain will then need it anyway).
    """
    if objective.loss is not None:
        return objective.loss
    if backward is None:
        backward = objective.updates is None and objective.grads is None
    if backward and objective.grads is not None:
        backward = False
    return objective.get_loss(backward)


def _float(x: Any) -> float:
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


# ---------------------------------------------------------------------------- loss scaling
class _LossScale(TensorTransform):
    _divide = False

    def __init__(self, alpha: float = 1, min_value: float = 1e-16, backward: bool = True):
        super().__init__(dict(alpha=alpha, min_value=min_value, backward=backward))

    def update(self, objective: Objective) -> None:
        pass  # stateless; the loss is evaluated in apply, with gradients if ``backward``

    def apply_states(self, objective: Objective, states: Any, settings: Any) -> Objective:
        params = objective.params
        alpha, min_value, backward = self.settings.values(params, "alpha", "min_value", "backward")
        loss = _float(loss_for(objective, bool(backward[0])))
        factors = [max(loss * a, m) for a, m in zip(alpha, min_value)]
        if self._divide:
            factors = [1 / f for f in factors]
        upd = objective.get_updates()
        torch._foreach_mul_(upd, scalar_or_list(factors))
        return objective


class DivByLoss(_LossScale):
    """Divides the update by the loss: ``update / max(alpha * f(x), min_value)``.

    Args:
        alpha: multiplier of the loss.
        min_value: lower bound of ``alpha * f(x)`` (keeps the division finite for losses near or below zero).
        backward: compute the gradient together with the loss when the loss has to be evaluated.
    """

    _divide = True


class MulByLoss(_LossScale):
    """Multiplies the update by the loss: ``update * max(alpha * f(x), min_value)``.

    Args:
        alpha: multiplier of the loss.
        min_value: lower bound of ``alpha * f(x)``.
        backward: compute the gradient together with the loss when the loss has to be evaluated.
    """


class FillLoss(Module):
    """Replaces the update with tensors filled with ``alpha * f(x)``.

    Args:
        alpha: multiplier of the loss.
        backward: compute the gradient together with the loss when the loss has to be evaluated.
    """

    def __init__(self, alpha: float = 1, backward: bool = True):
        super().__init__(dict(alpha=alpha, backward=backward))

    def apply(self, objective: Objective) -> Objective:
        params = objective.params
        alpha, backward = self.settings.values(params, "alpha", "backward")
        loss = _float(loss_for(objective, bool(backward[0])))
        objective.set_updates([torch.full_like(p, loss * a) for p, a in zip(params, alpha)], owned=True)
        return objective


# ---------------------------------------------------------------------------- signs
class GradSign(TensorTransform):
    """Magnitude of the update with the sign of the gradient: ``|u| * sign(g)``."""

    def __init__(self):
        super().__init__(uses_grad=True)

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        for t, g in zip(tensors, grads):
            t.copysign_(g)
        return tensors


class UpdateSign(TensorTransform):
    """Magnitude of the gradient with the sign of the update: ``|g| * sign(u)``."""

    inplace = False

    def __init__(self):
        super().__init__(uses_grad=True)

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        return [g.copysign(t) for g, t in zip(grads, tensors)]


class NoiseSign(TensorTransform):
    """Random tensors with the sign of the update: ``|z| * sign(u)``.

    ``z`` is drawn from the global random generator: standard normal (``"normal"`` /
    ``"gaussian"``), uniform on [-1, 1] (``"uniform"``), +-1 (``"rademacher"``), or a standard normal
    vector rescaled to unit norm over all parameters (``"sphere"``).

    Args:
        distribution: the distribution of ``z``.
        variance: if given, ``z`` is rescaled so that each entry has this variance (for ``"sphere"``
            the norm becomes ``sqrt(n * variance)``).
    """

    inplace = False

    def __init__(self, distribution: Distribution = "normal", variance: float | None = None):
        if distribution not in ("normal", "gaussian", "uniform", "sphere", "rademacher"):
            raise ValueError(f"unknown distribution {distribution!r}")
        super().__init__(dict(distribution=distribution, variance=variance))

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        dist = settings[0]["distribution"]
        if dist in ("normal", "gaussian", "sphere"):
            z = [torch.randn_like(t) for t in tensors]
            if dist == "sphere":
                norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(z)))
                torch._foreach_div_(z, norm)
        elif dist == "uniform":
            z = [torch.rand_like(t).mul_(2).sub_(1) for t in tensors]
        else:
            z = [torch.ones_like(t) for t in tensors]
        variance = settings[0]["variance"]
        if variance is not None:
            # rescale so that every entry has this variance
            unit = {"uniform": 3.0, "sphere": float(sum(t.numel() for t in tensors))}.get(dist, 1.0)
            torch._foreach_mul_(z, math.sqrt(unit * variance))
        for zi, t in zip(z, tensors):
            zi.copysign_(t)
        return z


class Relative(TensorTransform):
    """Makes the update relative to the parameter magnitudes: ``u * max(|x|, min_value)``.

    Args:
        min_value: lower bound of ``|x|`` so that parameters at zero can still move.
    """

    def __init__(self, min_value: float = 1e-4):
        super().__init__(dict(min_value=min_value))

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        mags = torch._foreach_abs(params)
        torch._foreach_clamp_min_(mags, scalar_or_list(self.settings.values(params, "min_value")[0]))
        torch._foreach_mul_(tensors, mags)
        return tensors


# ---------------------------------------------------------------------------- grafting
def _rescale(source: list[torch.Tensor], target: list[torch.Tensor], current: list[torch.Tensor],
             floor: float, floor_target: bool) -> list[torch.Tensor]:
    """Multiplies ``source`` in place by ``target / current`` (norms, one per tensor or one shared).

    ``floor`` bounds the target norm from below (``floor_target``) or the current norm.
    """
    def ratio(t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if floor_target:  # a zero source stays zero
            return torch.where(c > 0, t.clamp_min(floor) / c.clamp_min(torch.finfo(c.dtype).tiny), torch.zeros_like(c))
        return t / c.clamp_min(floor)

    if all(t is target[0] for t in target) and all(c is current[0] for c in current):
        torch._foreach_mul_(source, ratio(target[0], current[0]))
    else:
        for x, t, c in zip(source, target, current):
            x.mul_(ratio(t, c))
    return source


class _Graft(TensorTransform):
    def __init__(self, tensorwise: bool = False, ord: Metric = 2, eps: float = 1e-6):
        check_ord(ord)
        super().__init__(dict(tensorwise=tensorwise, ord=ord, eps=eps), uses_grad=True)

    def _opts(self, settings: Sequence[Mapping[str, Any]]) -> tuple[bool, Any, float]:
        s = settings[0]
        return bool(s["tensorwise"]), s["ord"], float(s["eps"])


class GraftToGrad(_Graft):
    """Rescales the update to the norm of the gradient: ``u * ||g|| / max(||u||, eps)``.

    Grafting (Agarwal, Anil, Hazan, Koren & Zhang, 2020, "Disentangling Adaptive Gradient Methods
    from Learning Rates", arXiv:2002.11803) takes the direction of one method and the step size of
    another.

    Args:
        tensorwise: use the norm of each tensor instead of the global norm.
        ord: the norm (see ``torchzero.modules.misc._metrics``).
        eps: lower bound of the update norm.
    """

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        tensorwise, ord, eps = self._opts(settings)
        return _rescale(tensors, metrics(grads, ord, tensorwise), metrics(tensors, ord, tensorwise), eps, False)


class GraftGradToUpdate(_Graft):
    """The gradient rescaled to the norm of the update: ``g * ||u|| / max(||g||, eps)``.

    Args:
        tensorwise: use the norm of each tensor instead of the global norm.
        ord: the norm.
        eps: lower bound of the gradient norm.
    """

    inplace = False

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        tensorwise, ord, eps = self._opts(settings)
        out = [g.clone() for g in grads]
        return _rescale(out, metrics(tensors, ord, tensorwise), metrics(grads, ord, tensorwise), eps, False)


class GraftToParams(_Graft):
    """Rescales the update to the norm of the parameters, but to no less than ``eps``:
    ``u * max(||x||, eps) / ||u||`` (a zero update stays zero).

    Args:
        tensorwise: use the norm of each tensor instead of the global norm.
        ord: the norm.
        eps: smallest norm of the output.
    """

    def __init__(self, tensorwise: bool = False, ord: Metric = 2, eps: float = 1e-4):
        super().__init__(tensorwise=tensorwise, ord=ord, eps=eps)
        self._uses_grad = False

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        tensorwise, ord, eps = self._opts(settings)
        return _rescale(tensors, metrics(params, ord, tensorwise), metrics(tensors, ord, tensorwise), eps, True)


# ---------------------------------------------------------------------------- consecutive updates
class _Last(TensorTransform):
    """Keeps the previous update (``prev``) and combines it with the current one."""

    inplace = False
    _init_value = 0.0

    def _store(self, t: torch.Tensor, state: dict[str, Any], setting: Mapping[str, Any]) -> torch.Tensor:
        return t.clone()

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings):
        for t, st, se in zip(tensors, states, settings):
            prev = st.get("prev")
            st["last"] = torch.full_like(t, self._init_value) if prev is None else prev
            st["prev"] = self._store(t, st, se)

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        return [self._combine(t, st["last"], st, se) for t, st, se in zip(tensors, states, settings)]

    def _combine(self, cur: torch.Tensor, last: torch.Tensor, state: dict[str, Any], setting: Mapping[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    def reset_for_online(self) -> None:
        self.clear_state_keys("prev", "last")
        super().reset_for_online()


class LastDifference(_Last):
    """Difference of the last two updates: ``u_t - u_{t-1}`` (``u_{-1} = 0``)."""

    def __init__(self):
        super().__init__()

    def _combine(self, cur, last, state, setting):
        return cur - last


class LastProduct(_Last):
    """Elementwise product of the last two updates: ``u_t * u_{t-1}`` (``u_{-1} = 1``)."""

    _init_value = 1.0

    def __init__(self):
        super().__init__()

    def _combine(self, cur, last, state, setting):
        return cur * last


class LastRatio(_Last):
    """Elementwise ratio of the last two updates (``u_{-1} = 1``).

    Args:
        numerator: ``"cur"`` for ``u_t / u_{t-1}``, ``"prev"`` for ``u_{t-1} / u_t``.
    """

    _init_value = 1.0

    def __init__(self, numerator: Literal["cur", "prev"] = "cur"):
        if numerator not in ("cur", "prev"):
            raise ValueError(f"numerator must be 'cur' or 'prev', got {numerator!r}")
        super().__init__(dict(numerator=numerator))

    def _combine(self, cur, last, state, setting):
        return cur / last if setting["numerator"] == "cur" else last / cur


class LastAbsoluteRatio(_Last):
    """Ratio of the magnitudes of the last two updates (``|u_{-1}| = 1``).

    The previous magnitude is bounded below by ``eps``: with ``numerator="cur"`` the output is
    ``|u_t| / max(|u_{t-1}|, eps)``, with ``"prev"`` it is ``max(|u_{t-1}|, eps) / |u_t|``.

    Args:
        numerator: which of the two updates is the numerator.
        eps: lower bound of the previous magnitude.
    """

    _init_value = 1.0

    def __init__(self, numerator: Literal["cur", "prev"] = "cur", eps: float = 1e-8):
        if numerator not in ("cur", "prev"):
            raise ValueError(f"numerator must be 'cur' or 'prev', got {numerator!r}")
        super().__init__(dict(numerator=numerator, eps=eps))

    def _store(self, t, state, setting):
        return t.abs().clamp_min_(setting["eps"])

    def _combine(self, cur, last, state, setting):
        return cur.abs().div_(last) if setting["numerator"] == "cur" else last / cur.abs()


class LastGradDifference(Module):
    """Difference of the last two gradients: ``g_t - g_{t-1}`` (``g_{-1} = 0``)."""

    def __init__(self):
        super().__init__()

    def update(self, objective: Objective) -> None:
        grads = objective.get_grads()
        for p, g in zip(objective.params, grads):
            st = self.state[p]
            prev = st.get("prev_grad")
            st["last_grad"] = torch.zeros_like(g) if prev is None else prev
            st["prev_grad"] = g.clone()

    def apply(self, objective: Objective) -> Objective:
        grads = objective.get_grads()
        objective.set_updates([g - self.state[p]["last_grad"] for p, g in zip(objective.params, grads)], owned=True)
        return objective

    def reset_for_online(self) -> None:
        self.clear_state_keys("prev_grad", "last_grad")
        super().reset_for_online()


class HpuEstimate(TensorTransform):
    """Finite-difference estimate of the Hessian times the previous step: ``y / ||s||``.

    ``s = x_t - x_{t-1}`` is the difference of the parameters and ``y = u_t - u_{t-1}`` the
    difference of the updates (gradients), both taken as zero before the first step. For a
    quadratic with Hessian ``H`` and gradients as updates, ``y = H s``, so the output is ``H s/||s||``.
    A zero ``s`` gives a zero output.
    """

    inplace = False

    def __init__(self):
        super().__init__()

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings):
        if "prev_params" not in states[0]:
            for t, p, st in zip(tensors, params, states):
                st["prev_params"] = torch.zeros_like(p)
                st["prev_update"] = torch.zeros_like(t)
        prev_p = [st["prev_params"] for st in states]
        prev_u = [st["prev_update"] for st in states]
        s = torch._foreach_sub([p.detach() for p in params], prev_p)
        s_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(s)))
        y = torch._foreach_sub(tensors, prev_u)
        scale = torch.where(s_norm > 0, 1 / s_norm.clamp_min(torch.finfo(s_norm.dtype).tiny), torch.zeros_like(s_norm))
        torch._foreach_mul_(y, scale)
        for st, yi in zip(states, y):
            st["hpu"] = yi
        torch._foreach_copy_(prev_p, [p.detach() for p in params])
        torch._foreach_copy_(prev_u, tensors)

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        return [st["hpu"].clone() for st in states]

    def reset_for_online(self) -> None:
        self.clear_state_keys("prev_params", "prev_update", "hpu")
        super().reset_for_online()


class Previous(TensorTransform):
    """The update from ``n`` steps back (the oldest one kept while fewer than ``n`` steps were made).

    Args:
        n: how many steps back.
    """

    inplace = False

    def __init__(self, n=1):
        if int(n) < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        super().__init__(dict(n=int(n)))

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings):
        for t, st, se in zip(tensors, states, settings):
            hist = st.setdefault("history", [])
            hist.append(t.clone())
            while len(hist) > se["n"] + 1:
                hist.pop(0)

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        return [st["history"][0].clone() for st in states]


# ---------------------------------------------------------------------------- random hvp
def _sample(distribution: str, like: Sequence[torch.Tensor], generator: torch.Generator | None) -> list[torch.Tensor]:
    out = []
    for t in like:
        kw = dict(generator=generator, dtype=t.dtype, device=t.device)
        if distribution in ("normal", "gaussian", "sphere"):
            z = torch.randn(t.shape, **kw)
        elif distribution == "uniform":
            z = torch.rand(t.shape, **kw).mul_(2).sub_(1).mul_(math.sqrt(3))
        elif distribution == "rademacher":
            z = (torch.rand(t.shape, **kw) < 0.5).to(t.dtype).mul_(2).sub_(1)
        else:
            raise ValueError(f"unknown distribution {distribution!r}")
        out.append(z)
    if distribution == "sphere":
        n = sum(t.numel() for t in like)
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(out)))
        torch._foreach_mul_(out, math.sqrt(n) / norm)
    return out


_HVP_METHODS = {"autograd": "autograd", "batched_autograd": "autograd", "fd_forward": "fd_forward",
                "forward": "fd_forward", "central": "fd_central", "fd_central": "fd_central"}


class RandomHvp(Module):
    """Hessian-vector products with random vectors: ``mean_i H z_i`` (or ``mean_i z_i * H z_i``).

    With ``zHz=True`` the output is Hutchinson's estimator of the Hessian diagonal
    (Hutchinson, 1990, "A stochastic estimator of the trace of the influence matrix for Laplacian
    smoothing splines", doi:10.1080/03610919008812866; Bekas, Kokiopoulou & Saad, 2007, "An
    estimator for the diagonal of a matrix", doi:10.1016/j.apnum.2007.01.003).

    Args:
        n_samples: number of random vectors.
        distribution: distribution of ``z``: standard normal, uniform with unit variance, Rademacher,
            or normal rescaled to norm ``sqrt(n)``.
        update_freq: recompute every this many steps (the last result is reused in between).
        zHz: multiply each product by its vector.
        hvp_method: ``"autograd"`` (exact), ``"fd_forward"`` or ``"central"`` (finite differences of gradients).
        h: finite-difference step.
        seed: seed of this module's generator (None: the global generator).
    """

    def __init__(self, n_samples: int = 1, distribution: Distribution = "normal", update_freq: int = 1,
                 zHz: bool = False, hvp_method: Literal["autograd", "fd_forward", "central"] = "autograd",
                 h=1e-3, seed: int | None = None):
        if hvp_method not in _HVP_METHODS:
            raise ValueError(f"unknown hvp_method {hvp_method!r}; expected one of {sorted(_HVP_METHODS)}")
        if distribution not in ("normal", "gaussian", "uniform", "sphere", "rademacher"):
            raise ValueError(f"unknown distribution {distribution!r}")
        if int(n_samples) < 1 or int(update_freq) < 1:
            raise ValueError("n_samples and update_freq must be >= 1")
        super().__init__(dict(n_samples=int(n_samples), distribution=distribution, update_freq=int(update_freq),
                              zHz=zHz, hvp_method=hvp_method, h=h, seed=seed))

    def apply(self, objective: Objective) -> Objective:
        params = objective.params
        s = self.settings[params[0]]
        step = self.increment_counter("step", 0)
        if step % s["update_freq"] == 0 or "D" not in self.state[params[0]]:
            n = s["n_samples"]
            gen = self.get_generator(params[0].device, s["seed"])
            method = _HVP_METHODS[s["hvp_method"]]
            rgrad = None
            acc: list[torch.Tensor] | None = None
            for _ in range(n):
                z = _sample(s["distribution"], params, gen)
                hz, rgrad = objective.hessian_vector_product(z, rgrad, True, method, s["h"], retain_graph=True)  # type: ignore[arg-type]
                if s["zHz"]:
                    torch._foreach_mul_(hz, z)
                if acc is None:
                    acc = hz
                else:
                    torch._foreach_add_(acc, hz)
            assert acc is not None
            if n > 1:
                torch._foreach_div_(acc, n)
            for p, d in zip(params, acc):
                self.state[p]["D"] = d
        objective.set_updates([self.state[p]["D"].clone() for p in params], owned=True)
        return objective


# ---------------------------------------------------------------------------- best parameters
def load_best_params(params: Sequence[torch.Tensor], best_params: Sequence[torch.Tensor]) -> None:
    """Copies ``best_params`` into ``params``."""
    with torch.no_grad():
        for p, b in zip(params, best_params):
            p.copy_(b)


class SaveBest(Module):
    """Keeps the parameters with the lowest loss seen so far; the update passes through unchanged.

    Needs the loss: a closure, or ``opt.step(loss=loss)``. Put it last. After each step
    ``opt.attrs`` holds ``best_params`` (copies of the best parameters), ``best_loss`` and
    ``load_best_params`` (call it to write the best parameters into the model).
    """

    def __init__(self):
        super().__init__()

    def apply(self, objective: Objective) -> Objective:
        params = objective.params
        loss = _float(loss_for(objective))
        best = self.global_state.get("best_loss")
        if best is None or loss < best or (math.isnan(best) and not math.isnan(loss)):
            self.global_state["best_loss"] = loss
            for p in params:
                st = self.state[p]
                if "best" in st:
                    st["best"].copy_(p.detach())
                else:
                    st["best"] = p.detach().clone()
        best_params = [self.state[p]["best"] for p in params]
        objective.attrs["best_params"] = best_params
        objective.attrs["best_loss"] = self.global_state["best_loss"]
        objective.attrs["load_best_params"] = functools.partial(load_best_params, params, best_params)
        return objective
