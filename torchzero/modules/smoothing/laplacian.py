"""Laplacian smoothing of the update (Osher et al., 2022)."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.transform import TensorTransform
from ...utils.params import tensors_to_vec, vec_to_tensors


def laplacian_smooth(v: torch.Tensor, sigma: float) -> torch.Tensor:
    """Solves ``(I - sigma * L) x = v`` for a flat vector ``v``, with ``L`` the 1-d discrete Laplacian
    with periodic boundary (``(L x)_i = x_{i-1} - 2 x_i + x_{i+1}``).

    ``I - sigma * L`` is circulant, so it is diagonal in the Fourier basis with eigenvalues
    ``1 + 4 sigma sin^2(pi k / n)``: one real FFT, a division and an inverse FFT, ``O(n log n)``.
    """
    n = v.numel()
    k = torch.arange(n // 2 + 1, device=v.device, dtype=v.dtype if v.is_floating_point() else torch.float32)
    denom = 1 + 4 * sigma * torch.sin(k * (math.pi / n)) ** 2
    return torch.fft.irfft(torch.fft.rfft(v) / denom, n=n)


class LaplacianSmoothing(TensorTransform):
    """Laplacian smoothing (Osher, Wang, Yin, Luo, Barekat, Pham & Lin, 2022, "Laplacian smoothing
    gradient descent", Research in the Mathematical Sciences 9(3):55, arXiv:1806.06317).

    Replaces the (flattened) update ``u`` by ``(I - sigma * L)^{-1} u``, where ``L`` is the 1-d
    discrete Laplacian with periodic boundary — a low-pass filter that reduces the variance of
    stochastic gradients while keeping their mean. It is solved exactly with the FFT.
    ``LaplacianSmoothing(sigma), LR(lr)`` is the LSGD optimizer of the paper.

    Args:
        sigma: amount of smoothing.
        layerwise: smooth each parameter on its own; otherwise all parameters concatenated into
            one vector.
        min_numel: parameters with fewer elements are left as they are (``layerwise`` only).
    """

    inplace = False

    def __init__(self, sigma: float = 1, layerwise: bool = True, min_numel: int = 4):
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        super().__init__(dict(sigma=sigma, layerwise=layerwise, min_numel=min_numel))

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                           states: Any, settings: Sequence[Mapping[str, Any]]) -> list[torch.Tensor]:
        if not settings[0]["layerwise"]:
            vec = laplacian_smooth(tensors_to_vec(tensors), settings[0]["sigma"])
            return vec_to_tensors(vec, tensors)
        out = []
        for t, s in zip(tensors, settings):
            if t.numel() < s["min_numel"] or t.numel() < 2:
                out.append(t.clone())
            else:
                out.append(laplacian_smooth(t.reshape(-1), s["sigma"]).view_as(t))
        return out
