"""Hutchinson estimates of the Hessian diagonal, shared by AdaHessian, SophiaH and ESGD."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from ...core.objective import Objective

Distribution = Literal["normal", "gaussian", "uniform", "sphere", "rademacher"]
HVPMethod = Literal["batched_autograd", "autograd", "fd_forward", "fd_central"]
DISTRIBUTIONS = ("normal", "gaussian", "uniform", "sphere", "rademacher")
HVP_METHODS = ("batched_autograd", "autograd", "fd_forward", "fd_central")


def check_args(distribution: str, hvp_method: str, n_samples: int, update_freq: int) -> None:
    """Raises ``ValueError`` naming the offending argument."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if hvp_method not in HVP_METHODS:
        raise ValueError(f"hvp_method must be one of {HVP_METHODS}, got {hvp_method!r}")
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if int(update_freq) < 1:
        raise ValueError(f"update_freq must be >= 1, got {update_freq}")


def random_vectors(distribution: str, like: Sequence[torch.Tensor], generator: torch.Generator | None) -> list[torch.Tensor]:
    """Random tensors shaped like ``like``, drawn one tensor after the other from ``generator``.

    Every distribution has unit variance per entry: standard normal (``"normal"`` / ``"gaussian"``),
    uniform on ``[-sqrt 3, sqrt 3]``, Rademacher (+-1), or a standard normal vector over all tensors
    rescaled to norm ``sqrt(n)`` (``"sphere"``).
    """
    out = []
    for t in like:
        kw = dict(generator=generator, dtype=t.dtype, device=t.device)
        if distribution in ("normal", "gaussian", "sphere"):
            z = torch.randn(t.shape, **kw)
        elif distribution == "uniform":
            z = torch.rand(t.shape, **kw).mul_(2).sub_(1).mul_(math.sqrt(3))
        elif distribution == "rademacher":
            z = torch.rand(t.shape, **kw).lt_(0.5).mul_(2).sub_(1)
        else:
            raise ValueError(f"unknown distribution {distribution!r}")
        out.append(z)
    if distribution == "sphere":
        n = sum(t.numel() for t in like)
        total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(out)))
        torch._foreach_mul_(out, math.sqrt(n) / total)
    return out


def hutchinson(objective: Objective, n_samples: int, distribution: str, zHz: bool, hvp_method: str, h: float,
               generator: torch.Generator | None) -> list[torch.Tensor]:
    """``D = (1/k) sum_i z_i * (H z_i)`` (``zHz=True``) or ``(1/k) sum_i H z_i`` over ``k = n_samples``
    random vectors ``z_i`` with ``E[z z^T] = I``; the first is an unbiased estimate of ``diag(H)``
    (Hutchinson, 1990; Bekas, Kokiopoulou & Saad, 2007, "An estimator for the diagonal of a matrix",
    doi:10.1016/j.apnum.2007.01.003). Products are taken at the current parameters."""
    params = objective.params
    rgrad = None
    acc: list[torch.Tensor] | None = None
    for _ in range(int(n_samples)):
        z = random_vectors(distribution, params, generator)
        hz, rgrad = objective.hessian_vector_product(z, rgrad, True, hvp_method, h, retain_graph=True)  # type: ignore[arg-type]
        if zHz:
            torch._foreach_mul_(hz, z)
        if acc is None:
            acc = hz
        else:
            torch._foreach_add_(acc, hz)
    assert acc is not None
    if n_samples > 1:
        torch._foreach_div_(acc, n_samples)
    return acc


def hvps(objective: Objective, n_samples: int, distribution: str, hvp_method: str, h: float,
         generator: torch.Generator | None) -> list[tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """``n_samples`` pairs ``(z, H z)`` with random ``z``."""
    params = objective.params
    rgrad = None
    out = []
    for _ in range(int(n_samples)):
        z = random_vectors(distribution, params, generator)
        hz, rgrad = objective.hessian_vector_product(z, rgrad, True, hvp_method, h, retain_graph=True)  # type: ignore[arg-type]
        out.append((z, hz))
    return out


def scheduled_hutchinson(module: Any, objective: Objective, settings: Mapping[str, Any]) -> list[torch.Tensor] | None:
    """The Hutchinson estimate of ``module`` (settings ``n_samples``, ``distribution``, ``zHz``,
    ``hvp_method``, ``h``, ``seed``) on the steps it is due (every ``update_freq``-th, counting from
    the first); None on the others. Counts the module's steps in ``global_state["step"]``."""
    step = module.increment_counter("step", 0)
    if step % settings["update_freq"] != 0:
        return None
    s = settings
    gen = module.get_generator(objective.params[0].device, s["seed"])
    return hutchinson(objective, s["n_samples"], s["distribution"], s["zHz"], s["hvp_method"], s["h"], gen)
