"""GGT: full-matrix adaptive preconditioning over a window of recent gradients."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.transform import TensorTransform


class GGT(TensorTransform):
    """GGT (Agarwal, Bullins, Chen, Hazan, Singer, Zhang & Zhang, 2019, "Efficient Full-Matrix
    Adaptive Regularization", ICML; arXiv:1806.02958).

    Full-matrix Adagrad restricted to the last ``history_size`` gradients: with ``M = [g_1 ... g_r]``
    (``n x r``, the incoming updates, all parameters concatenated when ``concat_params``) the
    preconditioner is a power of ``M M^T``. It is formed from the small ``r x r`` Gram matrix::

        M^T M + (damping + rdamping * lambda_max) I = V diag(L) V^T
        keep eigenpairs with L > eig_tol * max(L) (and only the ``truncate`` largest)
        U = M V diag(L)^{-1/2}                         (orthonormal basis of the window)
        update = U diag(L)^{matrix_power} U^T u

    ``u`` is the output of ``inner`` (the incoming update without it); only its component in the
    span of the window is kept. Memory ``O(n r)``, cost ``O(n r^2 + r^3)`` per preconditioner update
    (every ``update_freq`` steps).

    Args:
        history_size: number of recent gradients kept.
        update_freq: recompute ``U, L`` every this many steps (the window takes every gradient).
        eig_tol: drop eigenvalues below ``eig_tol`` times the largest.
        truncate: keep at most this many largest eigenvalues (None keeps all).
        damping: added to the Gram matrix's eigenvalues.
        rdamping: damping relative to the largest eigenvalue.
        matrix_power: exponent of the eigenvalues (``-1/2``: Adagrad).
        basis_optimizer: optimizer run in the eigenbasis (only None is supported here).
        concat_params: one window over all parameters (else one per tensor).
        inner: module(s) whose output is preconditioned.
    """

    inplace = False

    def __init__(self, history_size: int = 100, update_freq: int = 1, eig_tol: float = 1e-7, truncate: int | None = None,
                 damping: float = 1e-4, rdamping: float = 0, matrix_power: float = -1 / 2, basis_optimizer: Any = None,
                 concat_params: bool = True, inner: Chainable | None = None):
        if int(history_size) < 1:
            raise ValueError(f"history_size must be >= 1, got {history_size}")
        if basis_optimizer is not None:
            raise NotImplementedError("GGT(basis_optimizer=...) is not implemented")
        if int(update_freq) < 1:
            raise ValueError(f"update_freq must be >= 1, got {update_freq}")
        super().__init__(dict(history_size=int(history_size), update_freq=int(update_freq), eig_tol=eig_tol, truncate=truncate, damping=damping,
                              rdamping=rdamping, matrix_power=matrix_power),
                         concat_params=concat_params, inner=inner)


    def multi_tensor_update(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                            states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        for t, st, se in zip(tensors, states, settings):
            g = t.detach().reshape(1, -1).clone()
            H = st.get("history")
            H = g if H is None else torch.cat([H, g])[-se["history_size"]:]
            st["history"] = H
            st["n"] = n = st.get("n", 0) + 1
            if (n - 1) % se["update_freq"] != 0:
                continue
            gram = H @ H.T  # r x r, M^T M with M = H^T
            L, V = torch.linalg.eigh(gram)
            d = se["damping"] + se["rdamping"] * float(L.max().clamp(min=0))
            L = L + d
            keep = L > se["eig_tol"] * L.max()
            L, V = L[keep], V[:, keep]
            if se["truncate"] is not None:
                L, V = L[-int(se["truncate"]):], V[:, -int(se["truncate"]):]
            st["U"] = H.T @ (V * L.rsqrt())
            st["L"] = L

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> list[torch.Tensor]:
        out = []
        for t, st, se in zip(tensors, states, settings):
            U, L = st["U"], st["L"]
            v = t.reshape(-1)
            out.append((U @ (L.pow(se["matrix_power"]) * (U.T @ v))).view_as(t))
        return out
