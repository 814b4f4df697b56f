"""Weight decay: WeightDecay, CautiousWeightDecay, RelativeWeightDecay, DirectWeightDecay.

The decay of order ``ord`` is the gradient of the penalty ``(1/ord) * sum |w|^ord``::

    decay(w) = sign(w) * |w|^(ord - 1)        (ord=2: w; ord=1: sign(w))

Added to the update before the other modules (``WeightDecay(wd), Adam(), LR(lr)``) it is the
classic L2 / L``ord`` regularization; added after them (``Adam(), WeightDecay(wd), LR(lr)``) it is
decoupled weight decay that still scales with the learning rate (Loshchilov & Hutter, 2019,
"Decoupled Weight Decay Regularization", arXiv:1711.05101); :class:`DirectWeightDecay` does not
scale with it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from ...core.module import Module
from ...core.objective import Objective
from ...core.transform import TensorTransform
from ...utils.foreach import scalar_or_list
from ...utils.norms import Ord, canonical_ord, global_norm


def _check_ord(ord: Any) -> None:
    if isinstance(ord, bool) or not isinstance(ord, (int, float)):
        raise TypeError(f"ord must be a number, got {type(ord).__name__}")


def decay_terms(params: Sequence[torch.Tensor], ord: Any) -> list[torch.Tensor] | Sequence[torch.Tensor]:
    """``sign(w) |w|^(ord-1)`` for each parameter (for ``ord=2`` the parameters themselves, not copies)."""
    if ord == 2:
        return params
    if ord == 1:
        return torch._foreach_sign(params)
    t = torch._foreach_abs(params)
    torch._foreach_pow_(t, ord - 1)
    torch._foreach_mul_(t, torch._foreach_sign(params))
    return t


def _terms(params: list[torch.Tensor], ords: list[Any]) -> list[torch.Tensor] | Sequence[torch.Tensor]:
    ord = scalar_or_list(ords)
    if isinstance(ord, list):  # rare: orders differ between parameter groups
        return [decay_terms([p], o)[0] for p, o in zip(params, ords)]
    return decay_terms(params, ord)


def _add_decay(tensors: list[torch.Tensor], params: list[torch.Tensor], ords: list[Any], scale: Any,
               mask: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """New tensors ``u + scale * decay(w) [* mask]``; ``scale`` is a list of floats (one per
    parameter), a 0-d tensor or a list of 0-d tensors."""
    with torch.no_grad():
        terms = _terms(params, ords)
        if mask is not None:
            terms = torch._foreach_mul(terms, mask)
        if isinstance(scale, list) and not isinstance(scale[0], torch.Tensor):
            scale = scalar_or_list(scale)
            if not isinstance(scale, list):
                return list(torch._foreach_add(tensors, terms, alpha=scale))
        return list(torch._foreach_add(tensors, torch._foreach_mul(terms, scale)))


def _same_sign(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    m = torch._foreach_mul(a, b)
    torch._foreach_sign_(m)
    torch._foreach_clamp_min_(m, 0.0)
    return m


class WeightDecay(TensorTransform):
    """Adds weight decay to the update: ``u <- u + weight_decay * sign(w) |w|^(ord-1)``.

    With ``ord=2`` before ``LR(lr)`` this is ``torch.optim.SGD(lr=lr, weight_decay=weight_decay)``,
    and before ``Adam(), LR(lr)`` it is ``torch.optim.Adam(weight_decay=weight_decay)``. After
    ``Adam()`` it is decoupled weight decay scaled by the learning rate, like ``torch.optim.AdamW``
    (Loshchilov & Hutter, 2019, arXiv:1711.05101).

    Args:
        weight_decay: decay scale.
        ord: order of the penalty ``(1/ord) sum |w|^ord``: 1 for L1, 2 for L2.
    """

    inplace = False

    def __init__(self, weight_decay: float, ord: int = 2):
        _check_ord(ord)
        super().__init__(dict(weight_decay=weight_decay, ord=ord))

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: Any, settings: Any) -> list[torch.Tensor]:
        wd, ord = self.settings.values(params, "weight_decay", "ord")
        return _add_decay(tensors, params, ord, wd)


class CautiousWeightDecay(TensorTransform):
    """Weight decay only on the coordinates where it points the same way as the update (Chen et al.,
    2025, "Cautious Weight Decay", arXiv:2510.12402)::

        d = sign(w) |w|^(ord-1)
        u <- u + weight_decay * d * [u * d > 0]

    so the decay never pushes against the direction the optimizer is moving.

    Args:
        weight_decay: decay scale.
        ord: order of the penalty: 1 for L1, 2 for L2.
    """

    inplace = False

    def __init__(self, weight_decay: float, ord: int = 2):
        _check_ord(ord)
        super().__init__(dict(weight_decay=weight_decay, ord=ord))

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: Any, settings: Any) -> list[torch.Tensor]:
        wd, ord = self.settings.values(params, "weight_decay", "ord")
        with torch.no_grad():
            return _add_decay(tensors, params, ord, wd, mask=_same_sign(tensors, params))


class RelativeWeightDecay(TensorTransform):
    """Weight decay whose scale follows the size of the update, the gradient or the parameters::

        u <- u + weight_decay * metric(x) * sign(w) |w|^(ord-1)

    where ``x`` is the update, the gradient or the parameters (``norm_input``) and ``metric`` is a
    norm or statistic of all of them together (by default ``'mad'``, the mean absolute value). The
    decay then stays in proportion to the step whatever the scale of the gradients is.

    Args:
        weight_decay: relative decay scale.
        ord: order of the penalty: 1 for L1, 2 for L2.
        norm_input: ``'update'``, ``'grad'`` or ``'params'``.
        metric: the norm (see :class:`ClipNorm`).
        cautious: decay only where it has the update's sign, as :class:`CautiousWeightDecay`.
    """

    inplace = False

    def __init__(self, weight_decay: float = 0.1, ord: int = 2, norm_input: Literal["update", "grad", "params"] = "update",
                 metric: Ord = "mad", cautious: bool = False):
        _check_ord(ord)
        if norm_input not in ("update", "grad", "params"):
            raise ValueError(f"norm_input must be 'update', 'grad' or 'params', got {norm_input!r}")
        canonical_ord(metric)
        super().__init__(dict(weight_decay=weight_decay, ord=ord, norm_input=norm_input, metric=metric, cautious=cautious),
                         uses_grad=norm_input == "grad")

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: Any, settings: Sequence[Mapping[str, Any]]) -> list[torch.Tensor]:
        s = settings[0]
        src = {"update": tensors, "grad": grads, "params": params}[s["norm_input"]]
        if src is None:  # norm_input changed to 'grad' through a parameter group
            raise RuntimeError("RelativeWeightDecay: norm_input='grad' must be given to the constructor")
        wd, ord = self.settings.values(params, "weight_decay", "ord")
        with torch.no_grad():
            metric = global_norm(src, canonical_ord(s["metric"]))
            w = scalar_or_list(wd)
            scale = list(torch._foreach_mul([metric] * len(w), w)) if isinstance(w, list) else metric * w
            mask = _same_sign(tensors, params) if s["cautious"] else None
            return _add_decay(tensors, params, ord, scale, mask=mask)


class DirectWeightDecay(Module):
    """Decays the parameters themselves, not the update: ``w <- w - weight_decay * sign(w) |w|^(ord-1)``,
    at the moment this module runs; the update passes through. The decay does not scale with the
    learning rate (fully decoupled weight decay, Loshchilov & Hutter, 2019, arXiv:1711.05101).

    Modules after this one that evaluate the objective (with a closure) see the decayed
    parameters; placed after a module that already computed the gradient (e.g.
    ``Adam(), DirectWeightDecay(wd), LR(lr)``) the gradient is that of the parameters before decay.

    Args:
        weight_decay: decay scale.
        ord: order of the penalty: 1 for L1, 2 for L2.
    """

    def __init__(self, weight_decay: float, ord: int = 2):
        _check_ord(ord)
        super().__init__(dict(weight_decay=weight_decay, ord=ord))

    def apply(self, objective: Objective) -> Objective:
        params = objective.params
        wd, ord = self.settings.values(params, "weight_decay", "ord")
        with torch.no_grad():
            w = scalar_or_list(wd)
            if scalar_or_list(ord) == 2:
                # w <- (1 - wd) w in place, without a temporary
                torch._foreach_mul_(params, [1 - x for x in w] if isinstance(w, list) else 1 - w)
            elif isinstance(w, list):
                torch._foreach_sub_(params, torch._foreach_mul(_terms(params, ord), w))
            else:
                torch._foreach_sub_(params, _terms(params, ord), alpha=w)
        return objective
