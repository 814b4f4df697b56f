"""Laplacian smoothing of the update (Osher et al., 2022)."""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ...core.transform import TensorTransform
from ...utils.params import tensors_to_vec, vec_to_tensors


@functools.lru_cache(maxsize=256)
def _denominator(n: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Eigenvalues ``1 + 4 sigma sin^2(pi k / n)`` of ``I - sigma * L`` for the real FFT frequencies."""
    k = torch.arange(n // 2 + 1, dtype=torch.float64)
    return (1 + 4 * sigma * torch.sin(k * (math.pi / n)) ** 2).to(dtype=dtype, device=device)


def laplacian_smooth(v: torch.Tensor, sigma: float) -> torch.Tensor:
    """Solves ``(I - sigma * L) x = v`` along the last dimension of ``v``, with ``L`` the 1-d
    discrete Laplacian with periodic boundary (``(L x)_i = x_{i-1} - 2 x_i + x_{i+1}``).

    ``I - sigma * L`` is circulant, so it is diagonal in the Fourier basis with eigenvalues
    ``1 + 4 sigma sin^2(pi k / n)``: one real FFT, a division and an inverse FFT, ``O(n log n)``.
    """
    n = v.shape[-1]
    denom = _denominator(n, float(sigma), v.dtype, v.device)
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
        out: list[torch.Tensor | None] = [None] * len(tensors)
        groups: dict[tuple[int, float], list[int]] = {}
        for i, (t, s) in enumerate(zip(tensors, settings)):
            if t.numel() < s["min_numel"] or t.numel() < 2:
                out[i] = t.clone()
            else:
                groups.setdefault((t.numel(), float(s["sigma"])), []).append(i)
        # parameters of the same size are smoothed together, as one batch of FFTs
        for (n, sigma), idx in groups.items():
            if len(idx) == 1:
                t = tensors[idx[0]]
                out[idx[0]] = laplacian_smooth(t.reshape(-1), sigma).view_as(t)
                continue
            res = laplacian_smooth(torch.stack([tensors[i].reshape(-1) for i in idx]), sigma)
            for i, r in zip(idx, res.unbind(0)):
                out[i] = r.view_as(tensors[i])
        return out  # type: ignore[return-value]
