"""Deterministic test problems shared by the golden recorder and the golden tests.

Each problem returns ``(params, loss_fn)``; ``loss_fn()`` reads the parameters. Everything is
float64 and built without global randomness, so both libraries see the same numbers.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

Problem = tuple[list[torch.Tensor], Callable[[], torch.Tensor]]


def _det(shape: tuple[int, ...], salt: float) -> torch.Tensor:
    n = math.prod(shape)
    return torch.sin(torch.arange(n, dtype=torch.float64) * 1.37 + salt).reshape(shape)


def rosenbrock() -> Problem:
    x = torch.tensor([-1.1, 2.5], dtype=torch.float64, requires_grad=True)
    return [x], lambda: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def quadratic(n: int = 10, cond: float = 100.0) -> Problem:
    """``0.5 x'Ax - b'x`` with eigenvalues from 1 to ``cond`` in a rotated basis."""
    q, _ = torch.linalg.qr(_det((n, n), 0.3))
    eig = torch.logspace(0, math.log10(cond), n, dtype=torch.float64)
    A = q @ torch.diag(eig) @ q.T
    b = _det((n,), 1.1)
    x = _det((n,), 2.0).clone().requires_grad_(True)
    return [x], lambda: 0.5 * x @ A @ x - b @ x


def mixed() -> Problem:
    """Several tensors of awkward shapes, coupled through a smooth non-quadratic loss."""
    shapes = [(), (3,), (2, 1, 3), (4, 2)]
    ps = [(_det(s if s else (1,), float(i)).reshape(s) * 0.5).clone().requires_grad_(True) for i, s in enumerate(shapes)]
    targets = [_det(s if s else (1,), 10.0 + i).reshape(s) for i, s in enumerate(shapes)]

    def loss() -> torch.Tensor:
        total = sum(((p - t) ** 2).sum() * (i + 1) for i, (p, t) in enumerate(zip(ps, targets)))
        coupling = sum(p.sum() for p in ps)
        return total + torch.log(torch.cosh(coupling)) + 0.1 * sum((p ** 4).sum() for p in ps)
    return ps, loss


PROBLEMS: dict[str, Callable[[], Problem]] = {"rosenbrock": rosenbrock, "quadratic": quadratic, "mixed": mixed}


def run(build: Callable[[list[torch.Tensor]], object], problem: str, steps: int, use_closure: bool = True) -> dict:
    """Runs an optimizer built by ``build(params)`` and records losses and parameters per step."""
    params, loss_fn = PROBLEMS[problem]()
    opt = build(params)
    losses, traj = [], []
    torch.manual_seed(0)
    for _ in range(steps):
        if use_closure:
            def closure(backward: bool = True) -> torch.Tensor:
                if not backward:
                    return loss_fn()
                # grad mode on: a closure asked for gradients must give them even when called under
                # no_grad (the reference's SG2 does that); a no-op everywhere else
                with torch.enable_grad():
                    loss = loss_fn()
                    opt.zero_grad()
                    loss.backward()
                return loss
            loss = opt.step(closure)
        else:
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            opt.step()
        losses.append(float(loss.detach() if isinstance(loss, torch.Tensor) else loss) if loss is not None else float("nan"))
        traj.append(torch.cat([p.detach().reshape(-1) for p in params]).tolist())
    return {"losses": losses, "trajectory": traj}
