"""Cautious updates: masking or scaling an update by its agreement with the gradient.

Liang, Chen, Liu & Liu (2024), "Cautious Optimizers: Improving Training with One Line of Code",
arXiv:2411.16085: an update coordinate whose sign disagrees with the gradient's is a step uphill
to first order; the cautious rule drops such coordinates and rescales the rest.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...core.functional import step as _step
from ...core.module import Module
from ...core.objective import Objective
from ...core.transform import TensorTransform

Mode = Literal["zero", "grad", "backtrack"]
_MODES = ("zero", "grad", "backtrack")


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")


def _agreement(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Float masks, 1 where ``a * b > 0`` (same sign, both non-zero) and 0 elsewhere."""
    m = torch._foreach_mul(a, b)
    torch._foreach_sign_(m)
    torch._foreach_clamp_min_(m, 0.0)
    return m


def _mask_fraction(mask: Sequence[torch.Tensor], eps: float) -> torch.Tensor:
    """``max(mean(mask), eps)`` over all elements of all tensors (a 0-d tensor)."""
    n = sum(m.numel() for m in mask)
    total = torch.stack(torch._foreach_norm(mask, 1)).sum()
    return (total / max(n, 1)).clamp_min(eps)


def _cautious(u: Sequence[torch.Tensor], ref: Sequence[torch.Tensor], mode: str, normalize: bool, eps: float) -> list[torch.Tensor]:
    """New tensors: ``u`` where its sign agrees with ``ref``; elsewhere 0, ``ref`` or ``-u`` by ``mode``."""
    mask = _agreement(u, ref)
    if mode == "zero":
        out = torch._foreach_mul(u, mask)
        if normalize:
            torch._foreach_div_(out, _mask_fraction(mask, eps))
        return out
    if mode == "grad":
        # u * m + ref * (1 - m), exact because m is 0 or 1
        out = torch._foreach_mul(u, mask)
        torch._foreach_neg_(mask)
        torch._foreach_add_(mask, 1.0)
        torch._foreach_addcmul_(out, ref, mask)
        return out
    # backtrack: multiply by 2m - 1, i.e. +1 where the signs agree and -1 elsewhere
    torch._foreach_mul_(mask, 2.0)
    torch._foreach_sub_(mask, 1.0)
    return torch._foreach_mul(u, mask)


def _cosine(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor], eps: float) -> torch.Tensor:
    """``<a, b> / max(|a| |b|, eps)`` over all tensors as one vector (a 0-d tensor)."""
    dot = torch.stack([(x * y).sum() for x, y in zip(a, b)]).sum()
    na = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(a)))
    nb = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(b)))
    return dot / (na * nb).clamp_min(eps)


class Cautious(TensorTransform):
    """Keeps the update only where its sign agrees with the gradient's (Liang et al., 2024,
    "Cautious Optimizers", arXiv:2411.16085). Meant to follow a momentum-based module.

    With mask ``m = [u * g > 0]``::

        zero:       u <- m * u               (normalize: u <- m * u / max(mean(m), eps))
        grad:       u <- m * u + (1 - m) * g
        backtrack:  u <- m * u - (1 - m) * u

    ``mean(m)`` is taken over all parameters together. ``normalize`` only acts in ``'zero'`` mode.

    Args:
        normalize: rescale by the fraction of coordinates kept.
        eps: lower bound of that fraction.
        mode: what to do where the signs disagree: ``'zero'`` (as in the paper), ``'grad'`` (use the
            gradient there) or ``'backtrack'`` (negate the update there).
    """

    inplace = False

    def __init__(self, normalize: bool = False, eps: float = 1e-6, mode: Mode = "zero"):
        _check_mode(mode)
        super().__init__(dict(normalize=normalize, eps=eps, mode=mode), uses_grad=True)

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: Any, settings: Any) -> list[torch.Tensor]:
        s = settings[0]
        return _cautious(tensors, grads, s["mode"], s["normalize"], s["eps"])


class UpdateGradientSignConsistency(TensorTransform):
    """Outputs the mask ``m = [u * g > 0]``: 1 where the update and the gradient have the same sign,
    0 elsewhere. With ``normalize`` the mask is divided by ``max(mean(m), eps)`` (mean over all
    parameters), as the cautious rule of Liang et al. (2024, arXiv:2411.16085) does.

    Args:
        normalize: divide by the fraction of agreeing coordinates.
        eps: lower bound of that fraction.
    """

    inplace = False

    def __init__(self, normalize: bool = False, eps: float = 1e-6):
        super().__init__(dict(normalize=normalize, eps=eps), uses_grad=True)

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: Any, settings: Any) -> list[torch.Tensor]:
        mask = _agreement(tensors, grads)
        if settings[0]["normalize"]:
            torch._foreach_div_(mask, _mask_fraction(mask, settings[0]["eps"]))
        return mask


class ScaleByGradCosineSimilarity(TensorTransform):
    """Multiplies the update by its cosine similarity with the gradient (all parameters as one vector)::

        u <- u * <u, g> / max(|u| |g|, eps)

    An update pointing away from the gradient is therefore negated, one nearly orthogonal to it
    shrunk — a soft version of the cautious rule (Liang et al., 2024, arXiv:2411.16085).

    Args:
        eps: lower bound of the denominator.
    """

    inplace = False

    def __init__(self, eps: float = 1e-6):
        super().__init__(dict(eps=eps), uses_grad=True)

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: Any, settings: Any) -> list[torch.Tensor]:
        return torch._foreach_mul(tensors, _cosine(tensors, grads, settings[0]["eps"]))


def _run_two(module: Module, objective: Objective) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Steps the children ``main`` and ``compare`` on separate copies of ``objective`` (neither
    sees the other's changes) and returns their updates."""
    outs = []
    for key in ("main", "compare"):
        child = objective.clone(clone_updates=False)  # not owned: a child that writes in place copies first
        child = _step(child, module.children[key])
        objective.update_attrs_from_clone_(child)
        outs.append(child.peek_updates())
    return outs[0], outs[1]


class IntermoduleCautious(Module):
    """The cautious rule between two modules: the output ``a`` of ``main`` is kept where its sign
    agrees with the output ``b`` of ``compare`` (both run on the same incoming update), after Liang
    et al. (2024, "Cautious Optimizers", arXiv:2411.16085), with ``b`` in the role of the gradient.

    With ``m = [a * b > 0]``: ``'zero'`` gives ``m * a`` (``normalize``: divided by
    ``max(mean(m), eps)``), ``'grad'`` gives ``m * a + (1 - m) * b``, ``'backtrack'`` gives
    ``m * a - (1 - m) * a``.

    Args:
        main: module(s) whose update is masked.
        compare: module(s) whose update gives the reference signs.
        normalize: rescale by the fraction of coordinates kept (``'zero'`` mode).
        eps: lower bound of that fraction.
        mode: ``'zero'``, ``'grad'`` (use ``compare``'s output where the signs disagree) or ``'backtrack'``.
    """

    def __init__(self, main: Chainable, compare: Chainable, normalize: bool = False, eps: float = 1e-6, mode: Mode = "zero"):
        _check_mode(mode)
        super().__init__(dict(normalize=normalize, eps=eps, mode=mode))
        self.set_child("main", main)
        self.set_child("compare", compare)

    def apply(self, objective: Objective) -> Objective:
        a, b = _run_two(self, objective)
        s = self.settings[objective.params[0]]
        objective.set_updates(_cautious(a, b, s["mode"], s["normalize"], s["eps"]), owned=True)
        return objective


class ScaleModulesByCosineSimilarity(Module):
    """Scales the output ``a`` of ``main`` by its cosine similarity with the output ``b`` of
    ``compare`` (both run on the same incoming update; all parameters as one vector)::

        a <- a * <a, b> / max(|a| |b|, eps)

    Args:
        main: module(s) whose update is scaled.
        compare: module(s) to compare with.
        eps: lower bound of the denominator.
    """

    def __init__(self, main: Chainable, compare: Chainable, eps: float = 1e-6):
        super().__init__(dict(eps=eps))
        self.set_child("main", main)
        self.set_child("compare", compare)

    def apply(self, objective: Objective) -> Objective:
        a, b = _run_two(self, objective)
        eps = self.settings[objective.params[0]]["eps"]
        objective.set_updates(torch._foreach_mul(a, _cosine(a, b, eps)), owned=True)
        return objective
