"""Test problems, closures and step loops shared by the module tests (conjugate gradient, L-SR1,
restarts, quasi-Newton, second-order and curvature). Everything is float64.

Imported as ``from closures import ...`` (``tests/`` is on ``sys.path`` through pytest's
``pythonpath`` setting, like ``module_updates``)."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

import torchzero as tz
from torchzero.core.module import Module

DT = torch.float64


# ------------------------------------------------------------------ problems
def spd_quadratic(n: int, cond: float = 100.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, b)`` of the quadratic ``0.5 x'Ax - b'x``: ``A = Q diag(logspace(0, log10(cond), n)) Q'``
    with ``Q`` from the QR of a seeded Gaussian matrix (so ``A`` is SPD with condition number
    ``cond``), then ``b`` a seeded Gaussian vector drawn from the same generator."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
    A = q @ torch.diag(torch.logspace(0, math.log10(cond), n, dtype=DT)) @ q.T
    b = torch.randn(n, generator=g, dtype=DT)
    return A, b


def quadratic_problem(n: int, cond: float = 100.0, seed: int = 0
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Callable[[], torch.Tensor]]:
    """``(x, A, b, f)``: the quadratic of :func:`spd_quadratic`, a zero starting point ``x``
    (requires grad) and ``f() = 0.5 x'Ax - b'x`` at the current ``x``."""
    A, b = spd_quadratic(n, cond, seed)
    x = torch.zeros(n, dtype=DT, requires_grad=True)
    return x, A, b, (lambda: 0.5 * x @ A @ x - b @ x)


def rosenbrock_problem() -> tuple[torch.Tensor, Callable[[], torch.Tensor]]:
    """``(x, f)``: the 2-d Rosenbrock function ``f() = (1 - x0)^2 + 100 (x1 - x0^2)^2`` (minimum 0
    at ``(1, 1)``) from the starting point ``x = (-1.1, 2.5)`` (requires grad)."""
    x = torch.tensor([-1.1, 2.5], dtype=DT, requires_grad=True)
    return x, lambda: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def quartic_problem() -> tuple[torch.Tensor, Callable[[], torch.Tensor]]:
    """``(x, f)``: a smooth, strongly convex non-quadratic function of 3 variables,
    ``f() = sum(x^4)/4 + 0.1 x0 x1 x2 + exp(0.3 x0) + 0.5 |x|^2``, from ``x = (0.7, -0.4, 1.2)``."""
    x = torch.tensor([0.7, -0.4, 1.2], dtype=DT, requires_grad=True)
    return x, lambda: (x ** 4).sum() / 4 + 0.1 * x[0] * x[1] * x[2] + torch.exp(0.3 * x[0]) + 0.5 * (x ** 2).sum()


class ExactQuadraticStep(Module):
    """Exact line search on ``0.5 x'Ax - b'x``: scales the update ``u`` by ``g'u / u'Au`` (the
    step along ``-u`` that minimises the quadratic, ``g`` the gradient). One parameter only."""

    def __init__(self, A: torch.Tensor):
        super().__init__()
        self.A = A

    def apply(self, objective):
        u = objective.get_updates()[0]
        g = objective.get_grads()[0]
        alpha = (g @ u) / (u @ self.A @ u)
        objective.set_updates([u * alpha])
        return objective


# ------------------------------------------------------------------ closures and step loops
def backward_closure(opt: torch.optim.Optimizer, f: Callable[[], torch.Tensor],
                     counter: list[bool] | None = None) -> Callable[..., torch.Tensor]:
    """The usual torchzero closure of ``f``: ``closure(backward=True)`` returns ``f()`` and, when
    ``backward``, first zeroes ``opt``'s gradients and backpropagates. Each call appends its
    ``backward`` flag to ``counter`` when one is given."""

    def closure(backward: bool = True) -> torch.Tensor:
        if counter is not None:
            counter.append(backward)
        loss = f()
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    return closure


def run_steps(opt: torch.optim.Optimizer, f: Callable[[], torch.Tensor], steps: int,
              counter: list[bool] | None = None) -> list[float]:
    """Steps ``opt`` ``steps`` times with :func:`backward_closure` of ``f`` and returns the loss
    each ``opt.step`` returned (the loss before that step), as floats."""
    closure = backward_closure(opt, f, counter)
    return [float(torch.as_tensor(opt.step(closure)).detach()) for _ in range(steps)]


def run_trajectory(mods: Sequence[Any], loss_fn: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor,
                   steps: int, closure: bool = True) -> tuple[list[torch.Tensor], tz.Optimizer]:
    """Minimises ``loss_fn(x)`` from a copy of ``x0`` with ``tz.Optimizer([x], *mods)`` for
    ``steps`` steps and returns ``(trajectory, optimizer)``, the trajectory being ``x`` after each
    step. With ``closure=False`` each step is a plain ``zero_grad``, ``backward``, ``step()``."""
    x = x0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], *mods)
    cl = backward_closure(opt, lambda: loss_fn(x))
    traj = []
    for _ in range(steps):
        if closure:
            opt.step(cl)
        else:
            opt.zero_grad()
            cl(False).backward()
            opt.step()
        traj.append(x.detach().clone())
    return traj, opt


def run_quadratic(mods: Sequence[Any], A: torch.Tensor, b: torch.Tensor, steps: int,
                  x0: torch.Tensor | None = None, closure: bool = True) -> tuple[list[torch.Tensor], tz.Optimizer]:
    """:func:`run_trajectory` on ``0.5 x'Ax - b'x``, by default from ``x0 = linspace(-1, 1, n)``."""
    if x0 is None:
        x0 = torch.linspace(-1, 1, b.numel(), dtype=DT)
    return run_trajectory(mods, lambda x: 0.5 * x @ A @ x - b @ x, x0, steps, closure)
