"""The project's demo: torchzero optimizers on real problems.

Run with ``scripts/run.sh demo`` (or ``python examples/demo.py``).
"""
from __future__ import annotations

import torch

import torchzero as tz


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def fit_regression() -> None:
    torch.manual_seed(0)
    X = torch.randn(512, 20)
    w_true = torch.randn(20, 1)
    y = X @ w_true + 0.01 * torch.randn(512, 1)
    model = torch.nn.Linear(20, 1)
    opt = tz.Optimizer(model.parameters(), tz.m.Adam(), tz.m.LR(1e-2))
    for step in range(301):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X), y)
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(f"  linear regression with Adam  step {step:3d}  loss {loss.item():.6f}")


def minimize_rosenbrock() -> None:
    x = torch.tensor([-1.5, 2.0], requires_grad=True)
    opt = tz.Optimizer([x], tz.m.Adam(), tz.m.LR(3e-2))
    for step in range(2001):
        def closure(backward: bool = True) -> torch.Tensor:
            loss = rosenbrock(x)
            if backward:
                opt.zero_grad()
                loss.backward()
            return loss
        loss = opt.step(closure)
        if step % 500 == 0:
            print(f"  rosenbrock with Adam          step {step:4d}  f {loss.item():.6f}  x {x.detach().tolist()}")


def main() -> None:
    print("torchzero demo")
    fit_regression()
    minimize_rosenbrock()


if __name__ == "__main__":
    main()
