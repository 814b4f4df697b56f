"""Shampoo."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.transform import TensorTransform
from ._linalg import POWER_METHODS, merged_shape, sym_matrix_power


def kron_shape(shape: torch.Size | tuple[int, ...], merge_small: bool, max_dim: int, precondition_1d: bool) -> list[int] | None:
    """The shape a tensor is viewed as for Kronecker-factored preconditioning, or None when it is not
    preconditioned that way (0-d tensors, 1-d ones without ``precondition_1d``, a dim over ``max_dim``)."""
    shape = list(shape)
    if merge_small:
        shape = merged_shape(shape, max_dim)
    else:
        shape = [s for s in shape if s != 1] or shape[:1]
    if len(shape) == 0 or (len(shape) == 1 and not precondition_1d) or any(s > max_dim for s in shape):
        return None
    return shape


def unfold_gram(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``T_(dim) T_(dim)^T``, the Gram matrix of the mode-``dim`` unfolding of ``t``."""
    m = torch.movedim(t, dim, 0).reshape(t.shape[dim], -1)
    return m @ m.T


def mode_product(t: torch.Tensor, M: torch.Tensor, dim: int) -> torch.Tensor:
    """Multiplies ``t`` by ``M`` along ``dim`` (``t x_dim M``)."""
    return torch.movedim(torch.tensordot(M, t, dims=([1], [dim])), 0, dim)


class Shampoo(TensorTransform):
    """Shampoo (Gupta, Koren & Singer, 2018, "Shampoo: Preconditioned Stochastic Tensor
    Optimization", arXiv:1802.09568).

    A tensor ``G`` of order ``k`` gets one preconditioner per dim: ``L_i`` accumulates the Gram
    matrices of the mode-``i`` unfoldings ``G_(i) G_(i)^T``. Starting from ``L_i = I``::

        L_i <- L_i + G_(i) G_(i)^T                 (beta None: a sum, as in the paper)
        L_i <- beta L_i + (1 - beta) G_(i) G_(i)^T  (otherwise, divided by 1 - beta^t if beta_debias)
        update = G x_1 (L_1 + reg I)^p x_2 (L_2 + reg I)^p ... x_k (L_k + reg I)^p

    with ``p = -1/(2k)`` (``L^{-1/4} G R^{-1/4}`` for a matrix), or ``matrix_power`` when given.
    The matrix powers are recomputed every ``precond_freq`` steps (first on the first step); the
    accumulators are updated every step from the incoming update, and the preconditioners are
    applied to the output of ``inner``.

    With ``merge_small`` neighbouring dims are merged while their product stays ``<= max_dim``
    (a ``(20, 3, 600)`` tensor becomes ``(60, 600)``); without it size-1 dims are dropped. Tensors
    that cannot be preconditioned this way (0-d, 1-d without ``precondition_1d``, a dim larger than
    ``max_dim``) get a diagonal Adagrad step ``g / (sqrt(sum g^2) + adagrad_eps)`` (with ``beta``:
    ``sqrt(1 - beta^t) g / (sqrt(v) + adagrad_eps)``, ``v`` an EMA of ``g^2``).

    Shampoo is usually grafted onto another optimizer such as Adam; SOAP is often better and cheaper.

    Args:
        reg: multiple of the identity added to the accumulators before the power.
        precond_freq: recompute the matrix powers every this many steps.
        matrix_power: exponent of the accumulators (default ``-1/(2k)``).
        merge_small: merge small neighbouring dims.
        max_dim: the largest dim that gets a preconditioner.
        precondition_1d: precondition vectors with a full-matrix preconditioner.
        adagrad_eps: epsilon of the Adagrad fallback.
        matrix_power_method: ``"eigh_abs"``, ``"eigh"`` or ``"svd"`` (see ``sym_matrix_power``).
        beta: EMA decay of the accumulators; None sums them.
        beta_debias: divide EMA accumulators by ``1 - beta^t``.
        inner: module(s) whose output is preconditioned.

    Example: Adam with a Shampoo preconditioner::

        tz.Optimizer(model.parameters(), tz.m.Shampoo(beta=0.999, inner=tz.m.EMA(0.9)),
                     tz.m.Debias(0.9, 0.999), tz.m.LR(1e-3))
    """

    inplace = False

    def __init__(self, reg: float = 1e-12, precond_freq: int = 10, matrix_power: float | None = None,
                 merge_small: bool = True, max_dim: int = 10_000, precondition_1d: bool = True,
                 adagrad_eps: float = 1e-8, matrix_power_method: str = "eigh_abs", beta: float | None = None,
                 beta_debias: bool = True, inner: Chainable | None = None):
        if matrix_power_method not in POWER_METHODS:
            raise ValueError(f"matrix_power_method must be one of {POWER_METHODS}, got {matrix_power_method!r}")
        if precond_freq < 1:
            raise ValueError(f"precond_freq must be >= 1, got {precond_freq}")
        super().__init__(dict(reg=reg, precond_freq=precond_freq, matrix_power=matrix_power, merge_small=merge_small,
                              max_dim=max_dim, precondition_1d=precondition_1d, adagrad_eps=adagrad_eps,
                              matrix_power_method=matrix_power_method, beta=beta, beta_debias=beta_debias), inner=inner)

    @torch.no_grad()
    def single_tensor_update(self, tensor: torch.Tensor, param: torch.Tensor, grad: Any, loss: Any,
                             state: dict[str, Any], setting: Mapping[str, Any]) -> None:
        beta = setting["beta"]
        step = state.get("step", 0)
        state["step"] = step + 1
        shape = kron_shape(tensor.shape, setting["merge_small"], setting["max_dim"], setting["precondition_1d"])
        if shape is None:
            acc = state.get("diagonal")
            if acc is None:
                acc = state["diagonal"] = torch.zeros_like(tensor)
            if beta is None:
                acc.addcmul_(tensor, tensor)
            else:
                acc.mul_(beta).addcmul_(tensor, tensor, value=1 - beta)
            return
        t = tensor.reshape(shape)
        accs = state.get("accumulators")
        if accs is None:
            accs = state["accumulators"] = [torch.eye(s, dtype=t.dtype, device=t.device) for s in shape]
        for i, acc in enumerate(accs):
            gram = unfold_gram(t, i)
            if beta is None:
                acc.add_(gram)
            else:
                acc.mul_(beta).add_(gram, alpha=1 - beta)
        if step % setting["precond_freq"] == 0:
            power = setting["matrix_power"]
            if power is None:
                power = -1 / (2 * len(shape))
            reg = setting["reg"]
            debias = 1 - beta ** (step + 1) if beta is not None and setting["beta_debias"] else 1.0
            precs = []
            for acc in accs:
                A = acc / debias if debias != 1.0 else acc
                if reg != 0:
                    A = A + reg * torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
                precs.append(sym_matrix_power(A, power, setting["matrix_power_method"]))
            state["preconditioners"] = precs

    @torch.no_grad()
    def single_tensor_apply(self, tensor: torch.Tensor, param: torch.Tensor, grad: Any, loss: Any,
                            state: dict[str, Any], setting: Mapping[str, Any]) -> torch.Tensor:
        precs = state.get("preconditioners")
        if precs is None:
            acc = state["diagonal"]
            beta = setting["beta"]
            out = tensor / (acc.sqrt() + setting["adagrad_eps"])
            if beta is not None and setting["beta_debias"]:
                out.mul_((1 - beta ** state["step"]) ** 0.5)
            return out
        shape = [p.shape[0] for p in precs]
        t = tensor.reshape(shape)
        for i, P in enumerate(precs):
            t = mode_product(t, P, i)
        return t.reshape(tensor.shape)
