"""Momentum-SAM."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import TensorTransform, Transform


def _global_norm(tensors: Sequence[torch.Tensor]) -> float:
    return math.sqrt(sum(float((t * t).sum()) for t in tensors))


def _momentum_update(v: list[torch.Tensor], g: list[torch.Tensor], momentum: float, lerp: bool) -> None:
    """``v <- momentum v + g`` (or ``momentum v + (1 - momentum) g`` with ``lerp``), in place."""
    if lerp:
        torch._foreach_lerp_(v, g, 1 - momentum)
    else:
        torch._foreach_mul_(v, momentum)
        torch._foreach_add_(v, g)


def _shift(v_old_norm: float, v_old: list[torch.Tensor] | None, v_new: list[torch.Tensor], rho: float) -> list[torch.Tensor]:
    """``rho (v_new/||v_new|| - v_old/||v_old||)``: moves the stored point from one perturbation to the next."""
    n_new = _global_norm(v_new)
    out = [t * (rho / n_new) for t in v_new] if n_new > 0 and rho != 0 else [torch.zeros_like(t) for t in v_new]
    if v_old is not None and v_old_norm > 0 and rho != 0:
        torch._foreach_add_(out, v_old, alpha=-rho / v_old_norm)
    return out


class MSAMMomentum(TensorTransform):
    """Momentum-SAM written as a momentum rule on the gradient (Becker et al., 2024).

    MSAM keeps the parameters at the perturbed point ``x~ = x - rho v/||v||`` (a step *against*
    the momentum ``v``, which costs no extra gradient). With ``g`` the gradient at ``x~``::

        v_new = momentum v + g                     (lerp: momentum v + (1 - momentum) g)
        d     = g + momentum v_new if nesterov else v_new
        update = lr d + weight_decay x + rho (v_new/||v_new|| - v/||v||)      (x = x~ + rho v/||v||)

    (norms over all parameters together), i.e. undo the old perturbation, take the momentum step
    and apply the new perturbation. The learning rate is part of the rule, so do not add
    ``tz.m.LR`` after it.

    Reference: Becker, M., Altrock, F., & Risse, B. (2024), "Momentum-SAM: Sharpness aware
    minimization without computational overhead", arXiv:2401.12033.

    Args:
        lr: learning rate (a setting, so schedulers can change it).
        momentum: momentum ``beta``.
        rho: perturbation size.
        weight_decay: decay of the unperturbed parameters ``x``, not scaled by ``lr``.
        nesterov: Nesterov momentum.
        lerp: exponential moving average instead of a sum.
    """

    inplace = False

    def __init__(self, lr: float, momentum: float = 0.9, rho: float = 0.3, weight_decay: float = 0,
                 nesterov: bool = False, lerp: bool = False):
        super().__init__(dict(lr=lr, momentum=momentum, rho=rho, weight_decay=weight_decay, nesterov=nesterov, lerp=lerp))

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Sequence[torch.Tensor]:
        s = settings[0]
        lr, momentum, rho, wd = float(s["lr"]), float(s["momentum"]), float(s["rho"]), float(s["weight_decay"])
        v = self.get_state(params, "momentum_buffer")
        nesterov = bool(s["nesterov"])
        # the direction of the current perturbation: the momentum, or the Nesterov direction
        old_dir = self.get_state(params, "direction") if nesterov else v
        old_norm = _global_norm(old_dir)
        v_old = [t.clone() for t in old_dir] if old_norm > 0 else None
        _momentum_update(v, tensors, momentum, bool(s["lerp"]))
        if nesterov:
            d = torch._foreach_add(tensors, v, alpha=momentum)
            for t, n in zip(old_dir, d):
                t.copy_(n)
            new_dir = old_dir
        else:
            d = [t.clone() for t in v]
            new_dir = v
        shift = _shift(old_norm, v_old, new_dir, rho)
        torch._foreach_mul_(d, lr)
        if wd != 0:
            # decay of the unperturbed point x = x~ + rho v/||v||
            x = [p.detach().clone() for p in params]
            if v_old is not None and rho != 0:
                torch._foreach_add_(x, v_old, alpha=rho / old_norm)
            torch._foreach_add_(d, x, alpha=wd)
        torch._foreach_add_(d, shift)
        return d


class MSAM(Transform):
    """Momentum-SAM around any optimizer (Becker et al., 2024).

    The parameters are kept at the perturbed point ``x~ = x - rho v/||v||``, where ``v`` is a
    momentum of the gradients (``v <- momentum v + g``, or an EMA with ``lerp``; with
    ``nesterov`` the direction ``g + momentum v`` is used). The gradient ``g`` at ``x~`` (plus
    ``weight_decay * x~``) goes through ``modules``, which produce the step ``u`` of the
    unperturbed point; the update applied to the stored parameters is::

        u + rho (v_new/||v_new|| - v/||v||)

    so the learning rate must be inside ``modules`` (``tz.m.LR`` after MSAM would scale the
    perturbation too). ``MSAM([tz.m.HeavyBall-like momentum..., tz.m.LR(lr)])`` recovers the
    paper's SGD-MSAM; ``MSAM([tz.m.Adam(), tz.m.LR(lr)])`` is Adam-MSAM.

    Reference: Becker, M., Altrock, F., & Risse, B. (2024), "Momentum-SAM: Sharpness aware
    minimization without computational overhead", arXiv:2401.12033.

    Args:
        modules: modules that optimize the MSAM objective (include ``tz.m.LR``).
        momentum: momentum of the perturbation direction.
        rho: perturbation size.
        weight_decay: added to the gradient as ``weight_decay * x~``.
        nesterov: Nesterov-style perturbation direction.
        lerp: exponential moving average instead of a sum.
    """

    def __init__(self, modules: Chainable, momentum: float = 0.9, rho: float = 0.3, weight_decay: float = 0,
                 nesterov: bool = False, lerp: bool = False):
        super().__init__(dict(momentum=momentum, rho=rho, weight_decay=weight_decay, nesterov=nesterov, lerp=lerp))
        self.set_child("modules", modules)

    def apply_states(self, objective: Objective, states: Any, settings: Any) -> Objective:
        params = objective.params
        s = self.settings[params[0]]
        momentum, rho, wd = float(s["momentum"]), float(s["rho"]), float(s["weight_decay"])
        g = [t.clone() for t in objective.peek_updates()]
        if wd != 0:
            torch._foreach_add_(g, [p.detach() for p in params], alpha=wd)
        v = self.get_state(params, "momentum_buffer")
        old_dir = self.get_state(params, "direction")  # the direction of the current perturbation
        old_norm = _global_norm(old_dir)
        v_old = [t.clone() for t in old_dir] if old_norm > 0 else None
        _momentum_update(v, g, momentum, bool(s["lerp"]))
        new_dir = torch._foreach_add(g, v, alpha=momentum) if s["nesterov"] else [t.clone() for t in v]
        for t, n in zip(old_dir, new_dir):
            t.copy_(n)
        shift = _shift(old_norm, v_old, new_dir, rho)

        inner = objective.clone(clone_updates=False)
        inner.set_updates(g, owned=True)
        from ...core.functional import step
        inner = step(inner, self.children["modules"])
        u = inner.get_updates()
        objective.update_attrs_from_clone_(inner)
        torch._foreach_add_(u, shift)
        objective.set_updates(u, owned=True)
        objective.skip_update = False
        return objective
