"""Full-matrix Adagrad."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...core.transform import TensorTransform
from ._linalg import POWER_METHODS, sym_matrix_power

_INITS = ("identity", "zeros", "ones", "GGT")


class FullMatrixAdagrad(TensorTransform):
    """Full-matrix Adagrad (Duchi, Hazan & Singer, 2011, "Adaptive Subgradient Methods for Online
    Learning and Stochastic Optimization", JMLR 12).

    With ``g`` the incoming update flattened into a vector (all parameters concatenated when
    ``concat_params``, else one accumulator per tensor)::

        G <- G + g g^T                                   (beta None)
        G <- beta G + (1 - beta) g g^T                   (otherwise; G / (1 - beta^t) if beta_debias)
        P = (G + reg I)^matrix_power                     (every precond_freq steps, first on the first)
        update = P u

    where ``u`` is the output of ``inner`` (the incoming update without it). ``matrix_power = -1/2``
    is Adagrad's ``G^{-1/2}``; with ``beta`` it is a full-matrix RMSprop, and with ``inner=EMA`` and
    ``Debias`` a full-matrix Adam. The accumulator starts as the identity, zeros, a matrix of ones or
    the first outer product (``init="GGT"``). Memory is ``O(n^2)`` and each root ``O(n^3)``; GGT is the
    low-memory version over recent gradients.

    Args:
        reg: multiple of the identity added before the power.
        precond_freq: recompute the power every this many steps.
        beta: EMA decay of the accumulator (None sums).
        beta_debias: divide the EMA accumulator by ``1 - beta^t``.
        init: ``"identity"``, ``"zeros"``, ``"ones"`` or ``"GGT"``.
        matrix_power: exponent of the accumulator.
        matrix_power_method: ``"eigh_abs"``, ``"eigh"`` or ``"svd"``.
        concat_params: one accumulator over all parameters (else one per tensor).
        inner: module(s) whose output is preconditioned.
        accumulator_tfm: module(s) applied to a copy of the accumulator before the power.
    """

    inplace = False

    def __init__(self, reg: float = 1e-12, precond_freq: int = 1, beta: float | None = None, beta_debias: bool = True,
                 init: Literal["identity", "zeros", "GGT"] = "identity", matrix_power: float = -1 / 2,
                 matrix_power_method: Literal["eigh", "eigh_abs", "svd"] = "eigh_abs", concat_params=True,
                 inner: Chainable | None = None, accumulator_tfm: Chainable | None = None):
        if init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {init!r}")
        if matrix_power_method not in POWER_METHODS:
            raise ValueError(f"matrix_power_method must be one of {POWER_METHODS}, got {matrix_power_method!r}")
        if int(precond_freq) < 1:
            raise ValueError(f"precond_freq must be >= 1, got {precond_freq}")
        super().__init__(dict(reg=reg, precond_freq=int(precond_freq), beta=beta, beta_debias=beta_debias, init=init,
                              matrix_power=matrix_power, matrix_power_method=matrix_power_method),
                         concat_params=concat_params, inner=inner)
        if accumulator_tfm is not None:
            self.set_child("accumulator", accumulator_tfm)

    def multi_tensor_update(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                            states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        for t, st, se in zip(tensors, states, settings):
            g = t.reshape(-1)
            outer = torch.outer(g, g)
            G = st.get("accumulator")
            beta = se["beta"]
            if G is None:
                init = se["init"]
                if init == "GGT":
                    G = st["accumulator"] = outer.clone()
                else:
                    make = {"identity": torch.eye, "zeros": torch.zeros, "ones": torch.ones}[init]
                    G = st["accumulator"] = make(g.numel(), g.numel(), dtype=g.dtype, device=g.device) if init == "identity" \
                        else make((g.numel(), g.numel()), dtype=g.dtype, device=g.device)
                    self._accumulate(G, outer, beta)
            else:
                self._accumulate(G, outer, beta)
            st["num_updates"] = st.get("num_updates", 0) + 1
        n = states[0]["num_updates"]
        if (n - 1) % settings[0]["precond_freq"] != 0 and all("precond" in st for st in states):
            return
        accs = []
        for st, se in zip(states, settings):
            acc, beta = st["accumulator"], se["beta"]
            accs.append(acc / (1 - beta ** n) if beta is not None and se["beta_debias"] else acc)
        if "accumulator" in self.children:
            accs = self.inner_step_tensors("accumulator", accs, clone=True)
        for acc, st, se in zip(accs, states, settings):
            if se["reg"] != 0:
                acc = acc + se["reg"] * torch.eye(acc.shape[0], dtype=acc.dtype, device=acc.device)
            st["precond"] = sym_matrix_power(acc, se["matrix_power"], se["matrix_power_method"])

    @staticmethod
    def _accumulate(G: torch.Tensor, outer: torch.Tensor, beta: float | None) -> None:
        if beta is None:
            G.add_(outer)
        else:
            G.mul_(beta).add_(outer, alpha=1 - beta)

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> list[torch.Tensor]:
        return [(st["precond"] @ t.reshape(-1)).view_as(t) for t, st in zip(tensors, states)]
