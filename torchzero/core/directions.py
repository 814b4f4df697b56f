"""Random directions rebuilt from a seed.

``make_direction(distribution, seed, like)`` is a pure function of its arguments, so a point
``base + scale * direction`` can travel as ``(seed, scale)`` and be rebuilt on another worker.
Each direction has its own generator, seeded with ``seed``, on the device of ``like``.

Every random distribution here has zero mean and identity second moment, ``E[d d^T] = I``, which
makes the randomized finite-difference estimate ``(d . grad) d`` unbiased for the gradient.
:func:`derive_seed` turns a module's seed and a counter into independent per-direction seeds.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import torch

DISTRIBUTIONS = ("rademacher", "gaussian", "normal", "uniform", "sphere", "basis")
RANDOM_DISTRIBUTIONS = ("rademacher", "gaussian", "normal", "uniform", "sphere")

_SQRT3 = math.sqrt(3.0)
_MASK64 = (1 << 64) - 1


def check_distribution(distribution: str, allow_basis: bool = False) -> str:
    """Validates a distribution name (``ValueError`` naming the argument otherwise)."""
    allowed = DISTRIBUTIONS if allow_basis else RANDOM_DISTRIBUTIONS
    if distribution not in allowed:
        raise ValueError(f"distribution must be one of {allowed}, got {distribution!r}")
    return distribution


def derive_seed(seed: int, counter: int) -> int:
    """A 63-bit seed that is a fixed function of ``(seed, counter)`` (SplitMix64 finaliser).

    Consecutive counters give unrelated seeds, so a module can number its perturbations and
    store only an integer counter in its state.
    """
    z = (int(seed) * 0x9E3779B97F4A7C15 + (int(counter) + 1) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return z & ((1 << 63) - 1)


_generators = threading.local()


def _generator(device: torch.device) -> torch.Generator:
    """This thread's generator for ``device`` (re-seeding fully resets it, so one is enough)."""
    gens = getattr(_generators, "by_device", None)
    if gens is None:
        gens = _generators.by_device = {}
    g = gens.get(device)
    if g is None:
        g = gens[device] = torch.Generator(device=device)
    return g


def make_direction(distribution: str, seed: int, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Tensors shaped like ``like``.

    * ``rademacher``: entries +-1 with equal probability;
    * ``gaussian`` / ``normal``: standard normal entries;
    * ``uniform``: entries uniform on ``[-sqrt(3), sqrt(3)]`` (unit variance);
    * ``sphere``: a uniformly random direction scaled to norm ``sqrt(n)`` (``n`` entries in all);
    * ``basis``: not random: the ``seed``-th coordinate vector ``e_seed`` of all entries of
      ``like`` flattened and concatenated in order (used by coordinate-wise finite differences).
    """
    if not like:
        return []
    if distribution == "basis":
        return _basis(int(seed), like)
    device = like[0].device
    g = _generator(device)
    g.manual_seed(int(seed))
    out = []
    for t in like:
        if distribution == "rademacher":  # (randint draws the same integers whatever the dtype)
            real = not (t.is_complex() or t.dtype == torch.bool)
            d = torch.randint(0, 2, t.shape, generator=g, device=device, dtype=t.dtype if real else torch.int8)
            d = (d if real else d.to(t.dtype)).mul_(2).sub_(1)
        elif distribution in ("gaussian", "normal", "sphere"):
            d = torch.randn(t.shape, generator=g, device=device, dtype=t.dtype)
        elif distribution == "uniform":
            d = torch.rand(t.shape, generator=g, device=device, dtype=t.dtype).mul_(2 * _SQRT3).sub_(_SQRT3)
        else:
            raise ValueError(f"unknown distribution {distribution!r}; expected one of {DISTRIBUTIONS}")
        out.append(d)
    if distribution == "sphere":
        n = sum(d.numel() for d in out)
        norm = torch.sqrt(sum((d * d).sum() for d in out))
        factor = math.sqrt(n) / float(norm.clamp_min(torch.finfo(out[0].dtype).tiny))
        out = [d.mul_(factor) for d in out]
    return out


def _basis(index: int, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    total = sum(t.numel() for t in like)
    if not 0 <= index < total:
        raise ValueError(f"basis index {index} out of range for {total} entries")
    out = []
    offset = 0
    for t in like:
        d = torch.zeros(t.shape, dtype=t.dtype, device=t.device)
        if offset <= index < offset + t.numel():
            d.view(-1)[index - offset] = 1
        offset += t.numel()
        out.append(d)
    return out
