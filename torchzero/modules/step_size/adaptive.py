"""Adaptive step sizes: Polyak, Barzilai-Borwein (plain and stabilized), AdGD and the bold driver.

Each module computes one step size for all parameters in ``update`` (from the input it receives,
the gradients, the parameters and / or the loss) and multiplies the output of its ``inner`` module
(the input itself when there is none) by it in ``apply``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...core.transform import TensorTransform

BBType = Literal["long", "short", "geom", "geom-fallback"]
_BB_TYPES = ("long", "short", "geom", "geom-fallback")

def _loss_value(loss) -> float:
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)



def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    return float(sum(torch.dot(x.reshape(-1), y.reshape(-1)) for x, y in zip(a, b)))


def _norm(a: Sequence[torch.Tensor]) -> float:
    return float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(a)))))


class _ScalarStepSize(TensorTransform):
    """Base: ``update`` stores a step size in ``global_state["step_size"]``, ``apply`` multiplies by it."""

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        torch._foreach_mul_(tensors, float(self.global_state.get("step_size", 1.0)))
        return tensors


class _DifferenceStepSize(_ScalarStepSize):
    """Base of methods that use ``s = x_k - x_{k-1}`` and ``y = g_k - g_{k-1}``.

    ``g`` is the gradient (``use_grad=True``) or the input of the module. Calls
    :meth:`_step_size` with the step index and, from the second step on, ``s`` and ``y``.
    """

    def __init__(self, defaults: dict[str, Any], use_grad: bool, inner: Chainable | None):
        super().__init__(defaults, uses_grad=use_grad, inner=inner)
        self._use_grad = use_grad

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings):
        g = grads if self._use_grad else tensors
        assert g is not None
        k = self.increment_counter("step", 0)
        xs = [p.detach() for p in params]
        if "prev_x" in states[0]:
            prev_x = [st["prev_x"] for st in states]
            prev_g = [st["prev_g"] for st in states]
            s = torch._foreach_sub(xs, prev_x)
            y = torch._foreach_sub(list(g), prev_g)
            torch._foreach_copy_(prev_x, xs)
            torch._foreach_copy_(prev_g, list(g))
            step = self._step_size(k, s, y, tensors, settings)
        else:
            for st, x, gi in zip(states, xs, g):
                st["prev_x"] = x.clone()
                st["prev_g"] = gi.clone()
            step = self._step_size(k, None, None, tensors, settings)
        self.global_state["step_size"] = float(step)

    def _step_size(self, k: int, s: list[torch.Tensor] | None, y: list[torch.Tensor] | None,
                   tensors: list[torch.Tensor], settings: Sequence[Any]) -> float:
        raise NotImplementedError

    def reset_for_online(self) -> None:
        super().reset_for_online()
        self.clear_state_keys("prev_x", "prev_g")


def _bb_step(kind: str, s: list[torch.Tensor], y: list[torch.Tensor], fallback: float) -> float:
    """Barzilai-Borwein step size of type ``kind``; ``fallback`` where it is undefined."""
    sy, yy, ss = _dot(s, y), _dot(y, y), _dot(s, s)
    if kind == "long":
        val = ss / sy if sy > 0 else fallback
    elif kind == "short":
        val = sy / yy if sy > 0 and yy > 0 else fallback
    else:  # geometric mean of the two; with negative curvature, the magnitude of the short step
        if sy > 0 and yy > 0:
            val = math.sqrt(ss / yy)
        elif sy < 0 and yy > 0:
            val = -sy / yy
        else:
            val = fallback
    return val if math.isfinite(val) else fallback


class PolyakStepSize(_ScalarStepSize):
    """Polyak step size: ``alpha * (f - f*) / <g, u>`` for the update ``u`` and gradient ``g``.

    With ``f`` the loss and ``u`` the input of the module::

        step = (f - f*) / <g, u>        (<u, u> with use_grad=False)
        step = min(step, max)           (if max is given)
        update = alpha * step * u

    When ``f*`` is unknown (``f_star=None``) the target is ``f_best - y``, ``f_best`` the lowest loss
    seen so far (this step included), and ``y`` is multiplied by ``1 - y_decay`` after each step.
    A zero denominator gives a zero step. Needs the loss (a closure).

    Polyak, 1987, "Introduction to Optimization", Optimization Software, ch. 5.3; Hazan & Kakade,
    2019, "Revisiting the Polyak step size", arXiv:1905.00313.

    Args:
        f_star: the minimal value of the objective, or None if unknown.
        y: with ``f_star=None``, the target is this far below the best loss.
        y_decay: ``y`` decays by this fraction per step.
        max: largest step size (None: unbounded).
        use_grad: use ``<g, u>`` (True) or ``<u, u>`` (False) as the denominator.
        alpha: multiplier of the step size.
        inner: module(s) whose output the step size multiplies.
    """

    def __init__(self, f_star: float | None = 0, y: float = 1, y_decay: float = 1e-3, max: float | None = None,
                 use_grad=True, alpha: float = 1, inner: Chainable | None = None):
        super().__init__(dict(f_star=f_star, y=y, y_decay=y_decay, max=max, alpha=alpha), uses_grad=use_grad,
                         uses_loss=True, inner=inner)
        self._use_grad = use_grad

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings):
        s = settings[0]
        f = _loss_value(loss)
        gs = self.global_state
        f_star = s["f_star"]
        if f_star is None:
            best = min(gs.get("f_best", f), f)
            gs["f_best"] = best
            y = gs.get("y", s["y"])
            f_star = best - y
            gs["y"] = y * (1 - s["y_decay"])
        g = grads if self._use_grad else tensors
        assert g is not None
        denom = _dot(g, tensors)
        step = (f - f_star) / denom if denom != 0 else 0.0
        if not math.isfinite(step):
            step = 0.0
        if s["max"] is not None:
            step = min(step, s["max"])
        gs["step_size"] = step * s["alpha"]


def _first_bb_step(alpha_0: float, tensors: Sequence[torch.Tensor]) -> float:
    """Step size of the first BB step: ``alpha_0``, except that a small input (``max|u| < 1``) is
    rescaled to ``alpha_0`` in the max-norm, never beyond the input itself."""
    m = float(torch.stack([t.abs().max() for t in tensors if t.numel() > 0]).max()) if any(t.numel() for t in tensors) else 0.0
    if 0 < m < 1:
        return min(1.0, alpha_0 / m)
    return alpha_0


class BarzilaiBorwein(_DifferenceStepSize):
    """Barzilai-Borwein step size from the last parameter and gradient differences.

    With ``s = x_k - x_{k-1}`` and ``y = g_k - g_{k-1}`` (all parameters as one vector)::

        "long":  s.s / s.y          "short":  s.y / y.y
        "geom":  sqrt(long * short) = ||s|| / ||y||    (or |s.y| / y.y when s.y < 0)

    Where the chosen formula is undefined (``s.y <= 0`` for "long" and "short", ``y = 0``) the step
    size is ``alpha_0``. "geom-fallback" is the same as "geom". The first step has no differences:
    its step size is ``alpha_0``, or ``min(1, alpha_0 / max|u|)`` when the input ``u`` is small
    (``max|u| < 1``), so that a tiny ``alpha_0`` does not stall the start.

    Barzilai & Borwein, 1988, "Two-Point Step Size Gradient Methods", IMA Journal of Numerical
    Analysis 8(1), pp. 141-148, doi:10.1093/imanum/8.1.141.

    Args:
        type: "long", "short", "geom" or "geom-fallback".
        alpha_0: step size of the first step and fallback.
        use_grad: differences of gradients (True) or of the module's input (False).
        inner: module(s) whose output the step size multiplies.
    """

    def __init__(self, type: BBType = "geom", alpha_0: float = 1e-7, use_grad=True, inner: Chainable | None = None):
        if type not in _BB_TYPES:
            raise ValueError(f"type must be one of {_BB_TYPES}, got {type!r}")
        super().__init__(dict(type=type, alpha_0=alpha_0), use_grad=use_grad, inner=inner)

    def _step_size(self, k, s, y, tensors, settings):
        st = settings[0]
        if s is None or y is None:
            return _first_bb_step(st["alpha_0"], tensors)
        return _bb_step(st["type"], s, y, st["alpha_0"])


class BBStab(_DifferenceStepSize):
    """Stabilized Barzilai-Borwein: the BB step, with the step length capped at ``delta``.

    The step size is that of :class:`BarzilaiBorwein`, reduced where needed so that
    ``||step_size * u|| <= delta`` (``u`` the module's input)::

        step = min(bb, delta / ||u||)

    With ``delta=None`` the bound is adaptive: the first ``inf_iters + 1`` BB steps are unbounded and
    the shortest of the first ``inf_iters`` of them (at least one) sets ``delta = c * min ||s||``,
    which then stays fixed. A given ``delta`` applies to every BB step (all but the first step).

    Burdakov, Dai & Huang, 2019, "Stabilized Barzilai-Borwein method", Journal of Computational
    Mathematics 37(6), arXiv:1907.06409.

    Args:
        c: multiplier of the smallest recorded step length for the adaptive ``delta``.
        delta: bound on the step length (None: adaptive).
        type: BB formula, see :class:`BarzilaiBorwein`.
        alpha_0: step size of the first step (see :class:`BarzilaiBorwein`) and fallback.
        use_grad: differences of gradients (True) or of the module's input (False).
        inf_iters: number of unbounded steps before the adaptive bound is fixed.
        inner: module(s) whose output the step size multiplies.
    """

    def __init__(self, c=0.2, delta: float | None = None, type: BBType = "geom", alpha_0: float = 1e-7, use_grad=True,
                 inf_iters: int = 3, inner: Chainable | None = None):
        if type not in _BB_TYPES:
            raise ValueError(f"type must be one of {_BB_TYPES}, got {type!r}")
        super().__init__(dict(c=c, delta=delta, type=type, alpha_0=alpha_0, inf_iters=inf_iters), use_grad=use_grad, inner=inner)

    def _step_size(self, k, s, y, tensors, settings):
        st = settings[0]
        if s is None or y is None:
            return _first_bb_step(st["alpha_0"], tensors)
        step = _bb_step(st["type"], s, y, st["alpha_0"])
        delta = st["delta"]
        if delta is None:
            # lengths of the BB steps (k >= 2; s of k = 1 is the alpha_0 step) are recorded while unbounded
            gs = self.global_state
            unbounded = k <= st["inf_iters"] + 1
            if k >= 2 and (unbounded or "s_norm_min" not in gs):
                s_norm = _norm(s)
                gs["s_norm_min"] = min(gs.get("s_norm_min", s_norm), s_norm)
            if unbounded:
                return step
            delta = st["c"] * gs["s_norm_min"]
        u_norm = _norm(tensors)
        if u_norm > 0:
            step = min(step, delta / u_norm)
        return step


class AdGD(_DifferenceStepSize):
    """AdGD: gradient descent with a step size adapted to local curvature, without line search.

    With ``L_k = ||g_k - g_{k-1}|| / ||x_k - x_{k-1}||`` and ``theta_k = lambda_k / lambda_{k-1}``,
    starting from ``lambda_0 = alpha_0``::

        variant 1:  lambda_k = min( sqrt(1 + theta_{k-1}) lambda_{k-1},  1 / (sqrt(2) L_k) )
                    (1 / (2 L_k) with sqrt=False; theta_0 = 0)
        variant 2:  lambda_k = min( sqrt(2/3 + theta_{k-1}) lambda_{k-1},
                                    lambda_{k-1} / sqrt(max(2 lambda_{k-1}^2 L_k^2 - 1, 0)) )
                    (theta_0 = 1/3; ``sqrt`` is not used)

    A zero ``L_k`` (or zero ``x_k - x_{k-1}``) leaves only the first bound.

    Malitsky & Mishchenko, 2020, "Adaptive Gradient Descent without Descent", ICML, arXiv:1910.09529
    (variant 1); Malitsky & Mishchenko, 2024, "Adaptive Proximal Gradient Method for Convex
    Optimization", NeurIPS, arXiv:2308.02261 (variant 2).

    Args:
        variant: 1 or 2.
        alpha_0: initial step size.
        sqrt: variant 1: ``1 / (sqrt(2) L)`` (True) or ``1 / (2 L)`` (False) as the curvature bound.
        use_grad: differences of gradients (True) or of the module's input (False).
        inner: module(s) whose output the step size multiplies.
    """

    def __init__(self, variant: Literal[1, 2] = 2, alpha_0: float = 1e-7, sqrt: bool = True, use_grad=True,
                 inner: Chainable | None = None):
        if variant not in (1, 2):
            raise ValueError(f"variant must be 1 or 2, got {variant!r}")
        super().__init__(dict(variant=variant, alpha_0=alpha_0, sqrt=sqrt), use_grad=use_grad, inner=inner)

    def _step_size(self, k, s, y, tensors, settings):
        st = settings[0]
        gs = self.global_state
        v2 = st["variant"] == 2
        if s is None or y is None:
            gs["theta"] = 1 / 3 if v2 else 0.0
            return st["alpha_0"]
        lam = gs.get("step_size", st["alpha_0"])
        theta = gs.get("theta", 1 / 3 if v2 else 0.0)
        s_norm, y_norm = _norm(s), _norm(y)
        L = y_norm / s_norm if s_norm > 0 else 0.0
        if v2:
            first = math.sqrt(2 / 3 + theta) * lam
            q = 2 * lam * lam * L * L - 1
            second = lam / math.sqrt(q) if q > 0 else math.inf
        else:
            first = math.sqrt(1 + theta) * lam
            if L > 0:
                second = 1 / (math.sqrt(2) * L) if st["sqrt"] else 1 / (2 * L)
            else:
                second = math.inf
        new = min(first, second)
        gs["theta"] = new / lam if lam > 0 else 0.0
        return new


class BoldDriver(_ScalarStepSize):
    """Bold driver: grows the step size after a decrease of the loss, shrinks it otherwise.

    Starting from ``a_init``, on every step after the first::

        a <- a * nplus    if f_k < f_{k-1}
        a <- a * nminus   otherwise

    and the update is ``a * u``. Needs the loss (a closure).

    Battiti, 1989, "Accelerated backpropagation learning: two optimization methods", Complex
    Systems 3, pp. 331-342; Vogl et al., 1988, "Accelerating the convergence of the
    back-propagation method", Biological Cybernetics 59, pp. 257-263.

    Args:
        a_init: initial step size.
        nplus: multiplier after a decrease of the loss.
        nminus: multiplier otherwise.
        inner: module(s) whose output the step size multiplies.
    """

    def __init__(self, a_init=1e-3, nplus=1.1, nminus=0.1, inner: Chainable | None = None):
        super().__init__(dict(a_init=a_init, nplus=nplus, nminus=nminus), uses_loss=True, inner=inner)

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings):
        s = settings[0]
        gs = self.global_state
        f = _loss_value(loss)
        prev = gs.get("f_prev")
        a = gs.get("step_size", s["a_init"])
        if prev is not None:
            a = a * (s["nplus"] if f < prev else s["nminus"])
        gs["step_size"] = a
        gs["f_prev"] = f
