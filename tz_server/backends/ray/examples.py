"""Example objectives an operator can register (``--objective NAME=tz_server.backends.ray.examples:NAME``).

Each takes a list of tensors (the study's parameters) and returns the loss as a 0-d tensor.
"""
from __future__ import annotations

import time

import torch


def sphere(xs: list[torch.Tensor]) -> torch.Tensor:
    """``sum (x - 1)^2`` over every tensor (minimum 0 at all ones)."""
    return sum(((x - 1) ** 2).sum() for x in xs)


def rosenbrock(xs: list[torch.Tensor]) -> torch.Tensor:
    """The Rosenbrock function of all entries flattened (minimum 0 at all ones)."""
    x = torch.cat([t.reshape(-1) for t in xs])
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def slow_sphere(xs: list[torch.Tensor]) -> torch.Tensor:
    """:func:`sphere` after sleeping 50 ms (a stand-in for an expensive simulation)."""
    time.sleep(0.05)
    return sphere(xs)
