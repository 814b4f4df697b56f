"""The project's demo: torchzero optimizers on real problems, locally and hosted.

Run with ``scripts/run.sh demo`` (or ``python examples/demo.py``). The hosted part starts an
embedded tz-server on a free loopback port, then
  * tunes a black-box function with ask/tell (the server runs SPSA; two client threads evaluate),
  * trains a small regression model with a RemoteOptimizer (gradient push, then closure steps),
and checks the hosted runs against the same optimizers run locally.
"""
from __future__ import annotations

import time

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


def black_box(x: torch.Tensor) -> torch.Tensor:
    """A function we can only evaluate: a shifted, badly scaled quadratic with a bumpy term."""
    target = torch.tensor([1.0, -2.0, 0.5, 3.0])
    scale = torch.tensor([1.0, 4.0, 0.5, 2.0])
    return (scale * (x - target) ** 2).sum() + 0.1 * torch.sin(5 * x).pow(2).sum()


def hosted_tuning(address: str) -> None:
    import tz_client

    zeroth_order = "SPSA" in tz.m.implemented()
    modules = [tz.m.SPSA(), tz.m.Adam(), tz.m.LR(0.05)] if zeroth_order else [tz.m.Adam(), tz.m.LR(0.05)]
    client = tz_client.Client(address)
    study = client.create_study("demo-tuning", torch.zeros(4), modules, lower=-5.0, upper=5.0, seed=0)
    print(f"  study 'demo-tuning': {' -> '.join(type(m).__name__ for m in modules)} hosted on {address}")
    t = study.ask(n=16)
    print(f"  ask(n=16) handed out {len(t)} trial(s) of step 0: {[x.id for x in t]}"
          f"{' (SPSA evaluates both perturbations of a step as one batch)' if zeroth_order else ''}")
    study.tell(t, [black_box(x.params) for x in t], None if zeroth_order else [torch.func.grad(black_box)(x.params) for x in t])
    start = time.perf_counter()
    params, loss = study.optimize(black_box, 3000, n_workers=2, progress=True)
    info = study.info()
    took = time.perf_counter() - start
    print(f"  {info.evaluations} evaluations in {info.step} steps ({3000 / took:,.0f} evals/s over gRPC, 2 client threads)")
    print(f"  best loss {loss:.5f} at {[round(v, 3) for v in params.tolist()]} (optimum near [1, -2, 0.5, 3])")
    client.close()


def hosted_training(address: str) -> None:
    from tz_client import RemoteOptimizer

    torch.manual_seed(0)
    X = torch.randn(256, 10)
    y = X @ torch.randn(10, 1) + 0.01 * torch.randn(256, 1)

    def model_pair() -> tuple[torch.nn.Module, torch.nn.Module]:
        torch.manual_seed(1)
        a = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
        b = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
        b.load_state_dict(a.state_dict())
        return a, b

    remote_model, local_model = model_pair()
    remote = RemoteOptimizer(remote_model.parameters(), tz.m.Adam(), tz.m.LR(1e-2), address=address, session="demo-training")
    local = tz.Optimizer(local_model.parameters(), tz.m.Adam(), tz.m.LR(1e-2))
    print(f"  RemoteOptimizer session 'demo-training': Adam -> LR(1e-2), state on the server")
    for step in range(201):
        for model, opt in ((remote_model, remote), (local_model, local)):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(X), y)
            loss.backward()
            opt.step()
        if step % 100 == 0:
            print(f"  gradient push  step {step:3d}  loss {loss.item():.6f}")
    same = all(torch.equal(a, b) for a, b in zip(remote_model.parameters(), local_model.parameters()))
    print(f"  hosted parameters equal the local run's bit for bit: {same}")

    line_search = "Backtracking" in tz.m.implemented()
    modules = [tz.m.Adam(), tz.m.Backtracking()] if line_search else [tz.m.Adam(), tz.m.LR(1e-2)]
    remote_model, _ = model_pair()
    remote = RemoteOptimizer(remote_model.parameters(), *modules, address=address)
    evaluations = 0

    def closure(backward: bool = True) -> torch.Tensor:
        nonlocal evaluations
        evaluations += 1
        loss = torch.nn.functional.mse_loss(remote_model(X), y)
        if backward:
            remote.zero_grad()
            loss.backward()
        return loss

    for step in range(21):
        loss = remote.step(closure)
        if step % 10 == 0:
            print(f"  closure steps ({' -> '.join(type(m).__name__ for m in modules)})  step {step:2d}  loss {float(loss):.6f}")
    print(f"  the server called this process's closure {evaluations} times in 21 steps")


def hosted() -> None:
    import tz_server

    with tz_server.serve() as server:
        print(f"embedded tz-server listening on {server.address}")
        print("ask/tell tuning of a black-box function")
        hosted_tuning(server.address)
        print("training with a RemoteOptimizer")
        hosted_training(server.address)


def main() -> None:
    print("torchzero demo")
    fit_regression()
    minimize_rosenbrock()
    hosted()


if __name__ == "__main__":
    main()
