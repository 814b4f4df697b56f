"""Orthogonalized updates (Muon) and the corrections that go with them."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from ...core.transform import TensorTransform
from ._linalg import ORTHO_METHODS, as_matrices, from_matrices, matrix_dims, orthogonalize


def _dual_norm_scale(x: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
    # <X_b, O_b> for every matrix b of the batch, shaped to broadcast over (B, m, n)
    return (x * o).sum(dim=(-2, -1), keepdim=True)


def _adjust_factor(t: torch.Tensor, dims: tuple[int, int]) -> float:
    return 0.2 * math.sqrt(max(t.shape[dims[0]], t.shape[dims[1]]))


class Orthogonalize(TensorTransform):
    """Replaces each matrix of the update by its orthogonal polar factor (Muon).

    For an update matrix ``G = U S V^T`` (its SVD) the output is ``U V^T``, the "zeroth power"
    of ``G``: the steepest-descent direction under the spectral norm (Bernstein & Newhouse, 2024,
    "Old Optimizer, New Norm: An Anthology", arXiv:2409.20325). Muon (Jordan et al., 2024,
    "Muon: An optimizer for hidden layers in neural networks", kellerjordan.github.io/posts/muon)
    applies this to the momentum of 2D weights, computing ``U V^T`` with a quintic Newton-Schulz
    iteration ``X <- a X + (b X X^T + c (X X^T)^2) X`` started from ``G / ||G||_F``.

    The matrices are the first two dims of a tensor (``channel_first=True``, e.g. ``(out, in, kh,
    kw)``) or its last two; the other dims are batch dims. Tensors with fewer than two dims, or
    whose matrix dims include a size-1 dim, pass through unchanged, and so does any parameter in a
    group with ``orthogonalize=False`` (embeddings and classifier heads usually should be).

    Methods:

    * ``"newtonschulz"``: Muon's five Newton-Schulz steps (``a, b, c = 3.4445, -4.7750, 2.0315``)
      followed by two steps of the convergent quintic ``(15 x - 10 x^3 + 3 x^5) / 8``, which takes
      the singular values from Muon's ``[0.7, 1.2]`` band to within about 1% of 1; in bfloat16;
    * ``"ns5"``: Muon's original five steps only, in bfloat16;
    * ``"polar_express"``: the Polar Express schedule (Amsel et al., 2025, arXiv:2505.16932) run to
      convergence in float32/float64;
    * ``"svd"``: ``U V^T`` from an SVD (slow, exact); ``"eigh"``: ``G (G^T G)^{-1/2}`` from an
      eigendecomposition of the smaller Gram matrix; ``"qr"``: the ``Q`` factor of ``G`` (an
      orthonormal basis of its columns, not the polar factor).

    Args:
        adjust_lr: multiply by ``0.2 sqrt(max(A, B))`` for an ``A x B`` matrix, which matches the
            RMS of an AdamW update (Liu et al., 2025, "Muon is Scalable for LLM Training",
            arXiv:2502.16982).
        dual_norm_correction: multiply each orthogonalized matrix ``O`` by ``<G, O>``, the dual
            (nuclear) norm of the input ``G`` (github.com/leloykun/adaptive-muon).
        method: see above.
        channel_first: matrices over the first two dims (True) or the last two (False).

    Example: Muon on matrices, Adam on the rest::

        tz.Optimizer(model.parameters(),
                     tz.m.Split(lambda t: t.ndim >= 2,
                                true=[tz.m.HeavyBall(), tz.m.Orthogonalize(), tz.m.LR(1e-2)],
                                false=tz.m.Adam()),
                     tz.m.LR(1e-2))
    """

    inplace = False

    def __init__(self, adjust_lr: bool = False, dual_norm_correction: bool = False, method: str = "newtonschulz",
                 channel_first: bool = True):
        if method not in ORTHO_METHODS:
            raise ValueError(f"method must be one of {ORTHO_METHODS}, got {method!r}")
        super().__init__(dict(orthogonalize=True, adjust_lr=adjust_lr, dual_norm_correction=dual_norm_correction,
                              method=method, channel_first=channel_first))

    @torch.no_grad()
    def single_tensor_apply(self, tensor: torch.Tensor, param: torch.Tensor, grad: Any, loss: Any,
                            state: dict[str, Any], setting: Mapping[str, Any]) -> torch.Tensor:
        dims = matrix_dims(tensor, setting["channel_first"]) if setting["orthogonalize"] else None
        if dims is None:
            return tensor
        X = as_matrices(tensor, dims)
        O = orthogonalize(X, setting["method"])
        if setting["dual_norm_correction"]:
            O = O * _dual_norm_scale(X, O)
        if setting["adjust_lr"]:
            O = O * _adjust_factor(tensor, dims)
        return from_matrices(O, tensor, dims)


class DualNormCorrection(TensorTransform):
    """Dual norm correction for dualizer-based optimizers (github.com/leloykun/adaptive-muon).

    A dualizer such as :class:`Orthogonalize` maps the gradient ``G`` to a unit-norm direction
    ``O``; the steepest-descent step under that norm is ``<G, O> O`` (Bernstein & Newhouse, 2024,
    arXiv:2409.20325). This module multiplies each matrix ``O`` of the update by ``<G, O>``, ``G``
    being the matching matrix of the gradient. Matrices are taken as in :class:`Orthogonalize`
    (first two dims with ``channel_first``, else last two; other tensors pass through).
    ``Orthogonalize(dual_norm_correction=True)`` does the same with the module's own input as ``G``.
    """

    def __init__(self, channel_first: bool = True):
        super().__init__(dict(channel_first=channel_first), uses_grad=True)

    @torch.no_grad()
    def single_tensor_apply(self, tensor: torch.Tensor, param: torch.Tensor, grad: Any, loss: Any,
                            state: dict[str, Any], setting: Mapping[str, Any]) -> torch.Tensor:
        dims = matrix_dims(tensor, setting["channel_first"])
        if dims is None:
            return tensor
        O = as_matrices(tensor, dims)
        scale = _dual_norm_scale(as_matrices(grad, dims), O)
        return from_matrices(O * scale, tensor, dims)


class MuonAdjustLR(TensorTransform):
    """Muon's shape-dependent step size (Liu et al., 2025, "Muon is Scalable for LLM Training",
    arXiv:2502.16982; github.com/MoonshotAI/Moonlight).

    Multiplies each ``A x B`` matrix of the update by ``alpha * 0.2 * sqrt(max(A, B))``, which gives
    an orthogonalized update the RMS of a typical AdamW update. Matrices are taken as in
    :class:`Orthogonalize`; other tensors pass through. ``Orthogonalize(adjust_lr=True)`` has this
    built in; as a module it can go later in the chain.

    Args:
        channel_first: matrices over the first two dims (True) or the last two (False).
        alpha: extra multiplier.
    """

    def __init__(self, channel_first: bool = True, alpha: float = 1):
        super().__init__(dict(channel_first=channel_first, alpha=alpha))

    @torch.no_grad()
    def single_tensor_apply(self, tensor: torch.Tensor, param: torch.Tensor, grad: Any, loss: Any,
                            state: dict[str, Any], setting: Mapping[str, Any]) -> torch.Tensor:
        dims = matrix_dims(tensor, setting["channel_first"])
        if dims is None:
            return tensor
        return tensor.mul_(setting["alpha"] * _adjust_factor(tensor, dims))
