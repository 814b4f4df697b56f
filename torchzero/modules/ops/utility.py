"""Modules that set the update to something simple: constants, random tensors, the gradient,
the parameters, a copy, or nothing."""
from __future__ import annotations

import math
from typing import Literal

import torch

from ...core.module import Module
from ...core.objective import Objective

Distribution = Literal["normal", "gaussian", "uniform", "sphere", "rademacher"]
_DISTRIBUTIONS = ("normal", "gaussian", "uniform", "sphere", "rademacher")


class Clone(Module):
    """Replaces the update by a copy of it, so in-place changes made later do not reach tensors
    that something else holds (e.g. an intermediate result kept by another module)."""

    def __init__(self):
        super().__init__()

    def apply(self, objective: Objective) -> Objective:
        objective.set_updates([u.clone() for u in objective.peek_updates()], owned=True)
        return objective


class Identity(Module):
    """Returns the objective unchanged; accepts and ignores any arguments (a placeholder where a
    module is expected). Its Hessian approximation (:meth:`get_H`) is the identity matrix, for
    trust-region methods that want one."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def apply(self, objective: Objective) -> Objective:
        return objective

    def get_H(self, objective: Objective | None = None):
        return _identity_operator(objective)


class Noop(Module):
    """Returns the objective unchanged; accepts and ignores any arguments (same as :class:`Identity`,
    including the identity Hessian approximation)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def apply(self, objective: Objective) -> Objective:
        return objective

    def get_H(self, objective: Objective | None = None):
        return _identity_operator(objective)


def _identity_operator(objective: Objective | None):
    """``I`` over all parameters as one vector (of unknown size without an objective)."""
    from ...linalg import ScaledIdentity
    if objective is None:
        return ScaledIdentity(1.0)
    params = objective.params
    n = sum(p.numel() for p in params)
    return ScaledIdentity(1.0, n, params[0].device, params[0].dtype)


class Fill(Module):
    """Sets the update to tensors shaped like the parameters, filled with ``value``.

    Args:
        value: the fill value.
    """

    def __init__(self, value: float):
        super().__init__(dict(value=value))

    def apply(self, objective: Objective) -> Objective:
        params = objective.params
        values = self.settings.values(params, "value")[0]
        objective.set_updates([torch.full_like(p, v) for p, v in zip(params, values)], owned=True)
        return objective


class Zeros(Module):
    """Sets the update to zeros."""

    def __init__(self):
        super().__init__()

    def apply(self, objective: Objective) -> Objective:
        objective.set_updates([torch.zeros_like(p) for p in objective.params], owned=True)
        return objective


class Ones(Module):
    """Sets the update to ones."""

    def __init__(self):
        super().__init__()

    def apply(self, objective: Objective) -> Objective:
        objective.set_updates([torch.ones_like(p) for p in objective.params], owned=True)
        return objective


class Grad(Module):
    """Sets the update to the gradient (evaluating it if needed)."""

    def __init__(self):
        super().__init__()

    def apply(self, objective: Objective) -> Objective:
        objective.set_updates(objective.get_grads(), owned=False)
        return objective


class Params(Module):
    """Sets the update to the parameters (without a copy: later in-place changes copy first)."""

    def __init__(self):
        super().__init__()

    def apply(self, objective: Objective) -> Objective:
        objective.set_updates([p.detach() for p in objective.params], owned=False)
        return objective


class GradToNone(Module):
    """Forgets the gradient of the objective; the next module that needs it evaluates it again
    through the closure."""

    def __init__(self):
        super().__init__()

    def apply(self, objective: Objective) -> Objective:
        objective.grads = None
        return objective


class UpdateToNone(Module):
    """Forgets the update of the objective; the next module that reads it starts again from the
    gradient."""

    def __init__(self):
        super().__init__()

    def apply(self, objective: Objective) -> Objective:
        objective.set_updates(None)
        return objective


class Randn(Module):
    """Sets the update to samples of the standard normal distribution (torch's global generator)."""

    def __init__(self):
        super().__init__()

    def apply(self, objective: Objective) -> Objective:
        objective.set_updates([torch.randn_like(p) for p in objective.params], owned=True)
        return objective


class Uniform(Module):
    """Sets the update to samples of the uniform distribution on ``[low, high)`` (torch's global
    generator).

    Args:
        low: lower bound.
        high: upper bound.
    """

    def __init__(self, low: float, high: float):
        super().__init__(dict(low=low, high=high))

    def apply(self, objective: Objective) -> Objective:
        params = objective.params
        low, high = self.settings.values(params, "low", "high")
        objective.set_updates([torch.empty_like(p).uniform_(lo, hi) for p, lo, hi in zip(params, low, high)], owned=True)
        return objective


class RandomSample(Module):
    """Sets the update to a random sample (torch's global generator).

    With ``variance=None``:

    * ``"normal"`` / ``"gaussian"``: standard normal entries;
    * ``"uniform"``: entries uniform on ``[-1, 1)``;
    * ``"sphere"``: a uniformly random direction of unit norm (all tensors as one vector);
    * ``"rademacher"``: entries -1 or 1 with equal probability.

    With ``variance`` given, the sample is scaled so that each entry has that variance (the
    sphere sample then has norm ``sqrt(variance * n)`` over ``n`` entries).

    Args:
        distribution: one of the above.
        variance: variance of each entry, or None for the natural scale of the distribution.
    """

    def __init__(self, distribution: Distribution = "normal", variance: float | None = None):
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {_DISTRIBUTIONS}, got {distribution!r}")
        if variance is not None and (isinstance(variance, bool) or not isinstance(variance, (int, float)) or variance < 0):
            raise ValueError(f"variance must be None or a non-negative number, got {variance!r}")
        super().__init__(dict(distribution=distribution, variance=variance))

    def apply(self, objective: Objective) -> Objective:
        params = objective.params
        dist, var = self.settings.values(params, "distribution", "variance")
        d, v = dist[0], var[0]
        if d in ("normal", "gaussian", "sphere"):
            out = [torch.randn_like(p) for p in params]
        elif d == "uniform":
            out = [torch.empty_like(p).uniform_(-1, 1) for p in params]
        else:
            out = [torch.bernoulli(torch.full_like(p, 0.5)).mul_(2).sub_(1) for p in params]
        if d == "sphere":
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in out]))
            n = sum(p.numel() for p in params)
            scale = 1 / norm if v is None else math.sqrt(v * n) / norm
            torch._foreach_mul_(out, scale)
        elif v is not None:
            std = math.sqrt(3 * v) if d == "uniform" else math.sqrt(v)
            torch._foreach_mul_(out, std)
        objective.set_updates(out, owned=True)
        return objective
