"""Sharpness-aware minimization."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ...core.evaluation import evaluate_points
from ...core.module import Module
from ...core.objective import Objective


def _as_float(loss: Any) -> Any:
    return loss.detach() if isinstance(loss, torch.Tensor) else loss


def sam_perturbation(grads: Sequence[torch.Tensor], params: Sequence[torch.Tensor], rho: float, p: float, eps: float,
                     asam: bool) -> list[torch.Tensor]:
    """The worst-case perturbation ``e`` of SAM / ASAM for gradient ``g`` (first-order).

    SAM: ``e = rho sign(g) |g|^(q-1) / ||g||_q^(q-1)`` with ``1/p + 1/q = 1`` (``p = 2``:
    ``rho g / ||g||``; ``p = inf``: ``rho sign(g)``; ``p = 1``: ``rho sign(g_j) e_j`` at the
    largest ``|g_j|``). ASAM applies it in the scaled space ``T = |w| + eps``: ``e = T e'(T g)``.
    """
    g = [t.detach() for t in grads]
    if asam:
        T = [w.detach().abs().add_(eps) for w in params]
        g = [t * s for t, s in zip(g, T)]
    if p == 2:
        norm = math.sqrt(sum(float((t * t).sum()) for t in g))
        e = [t * (rho / (norm + eps)) for t in g]
    elif math.isinf(p):
        e = [torch.sign(t) * rho for t in g]
    elif p == 1:
        mx = max((float(t.abs().max()) for t in g if t.numel()), default=0.0)
        e = []
        found = False
        for t in g:
            z = torch.zeros_like(t)
            if not found and t.numel() and float(t.abs().max()) == mx and mx > 0:
                k = int(t.abs().reshape(-1).argmax())
                z.view(-1)[k] = rho * float(torch.sign(t.reshape(-1)[k]))
                found = True
            e.append(z)
    else:
        if p < 1:
            raise ValueError(f"p must be >= 1, got {p}")
        q = p / (p - 1)
        dual = sum(float((t.abs() ** q).sum()) for t in g) ** (1 / p)
        e = [torch.sign(t) * t.abs() ** (q - 1) * (rho / (dual + eps)) for t in g]
    if asam:
        e = [t * s for t, s in zip(e, T)]
    return e


class SAM(Module):
    """Sharpness-aware minimization (Foret et al., 2021).

    Minimizes ``max_{||e||_p <= rho} f(x + e)`` with the first-order worst case
    ``e = rho sign(g) |g|^(q-1) / ||g||_q^(q-1)`` (``1/p + 1/q = 1``; for ``p = 2``,
    ``e = rho g / ||g||``): each gradient request evaluates ``g = grad f(x)``, then returns
    ``grad f(x + e)`` (two forward-backward passes). The loss reported is ``f(x)``. Later modules
    see a closure with the same behaviour, so a line search after SAM works on the SAM objective.

    With ``asam=True`` this is ASAM (Kwon et al., 2021): the neighbourhood is scaled by the weight
    magnitudes, ``T = |w| + eps``, ``e = rho T^2 g / ||T g||`` for ``p = 2``.

    References: Foret, P., Kleiner, A., Mobahi, H., & Neyshabur, B. (2021), "Sharpness-aware
    minimization for efficiently improving generalization", ICLR, arXiv:2010.01412; Kwon, J.,
    Kim, J., Park, H., & Choi, I. K. (2021), "ASAM: Adaptive sharpness-aware minimization for
    scale-invariant learning of deep neural networks", ICML, arXiv:2102.11600.

    Args:
        rho: neighbourhood size.
        p: order of the norm bounding the perturbation (1, 2, any ``p > 1`` or ``inf``).
        eps: added to the norm in the denominator (and to ``|w|`` for ASAM).
        asam: scale the neighbourhood by the weight magnitudes (ASAM).
    """

    def __init__(self, rho: float = 0.05, p: float = 2, eps: float = 1e-10, asam: bool = False):
        if p < 1:
            raise ValueError(f"p must be >= 1, got {p}")
        super().__init__(dict(rho=rho, p=p, eps=eps, asam=asam))

    def _sam_loss_grads(self, closure: Callable, params: list[torch.Tensor], loss: Any,
                        grads: Sequence[torch.Tensor] | None) -> tuple[Any, list[torch.Tensor]]:
        s = self.settings[params[0]]
        if grads is None:
            with torch.enable_grad():
                loss = closure(True)
            grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]
        e = sam_perturbation(grads, params, float(s["rho"]), float(s["p"]), float(s["eps"]), bool(s["asam"]))
        point = [p.detach() + ei for p, ei in zip(params, e)]
        res = evaluate_points(closure, params, [point], backward=True)[0]
        assert res.grads is not None
        return _as_float(loss), [g.to(p.dtype) for g, p in zip(res.grads, params)]

    def apply(self, objective: Objective) -> Objective:
        closure = objective.closure
        if closure is None:
            raise RuntimeError(f"{type(self).__name__} evaluates gradients at a perturbed point and needs a closure; "
                               "pass one to optimizer.step(closure)")
        params = objective.params
        if objective.grads is None:
            objective.get_grads()
        loss, grads = self._sam_loss_grads(closure, params, objective.loss, objective.grads)
        objective.loss = objective.loss_approx = loss
        objective.grads = grads
        objective.set_updates(grads, owned=False)
        module = self

        def sam_closure(backward: bool = True) -> Any:
            if not backward:
                return closure(False)
            loss2, g2 = module._sam_loss_grads(closure, params, None, None)
            for p, g in zip(params, g2):
                p.grad = g
            return loss2

        objective.closure = sam_closure
        return objective


class ASAM(SAM):
    """Adaptive sharpness-aware minimization (Kwon et al., 2021).

    SAM in the weight-scaled space ``T = |w| + eps``: the perturbation is
    ``e = rho T^2 g / ||T g||`` (``p = 2``), which makes the sharpness measure invariant to
    rescaling the weights. It needs a larger ``rho`` than SAM (0.5 - 1). Identical to
    ``SAM(asam=True)``.

    Reference: Kwon, J., Kim, J., Park, H., & Choi, I. K. (2021), "ASAM: Adaptive
    sharpness-aware minimization for scale-invariant learning of deep neural networks", ICML,
    arXiv:2102.11600.

    Args:
        rho: neighbourhood size.
        p: order of the norm.
        eps: added to ``|w|`` and to the norm.
    """

    def __init__(self, rho: float = 0.5, p: float = 2, eps: float = 1e-10):
        super().__init__(rho=rho, p=p, eps=eps, asam=True)
