"""Ray benchmarks (issue 5): parallel evaluations, evaluator overhead, sharded steps.

    .venv/bin/python benchmarks/ray_evaluator.py --quick

1. SPSA with ``n_samples=8`` (16 evaluations per step) on an objective that sleeps 50 ms per
   evaluation: wall time per step, sequential (``FunctionEvaluator``) vs ``RayEvaluator`` with 8
   workers, same run; the two trajectories are checked equal.
2. Overhead per evaluation: a batch of no-op evaluations through ``RayEvaluator`` vs the same
   function as bare Ray tasks (``ray.get([f.remote(x) ...])``); bytes per request for a
   1M-parameter point sent as a seed vs as tensors.
3. Adam on 10M parameters (ten 1M tensors): step time of a gradient push, in-process (local
   backend) vs Ray sessions with 1 and 2 shards (coordinator calls, no gRPC).

Ray is started locally with 16 logical CPUs (the objective sleeps, so workers need slots, not
cores). Figures go to ``benchmarks/RESULTS.md`` by hand.
"""
from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))

import torchzero as tz  # noqa: E402
from torchzero.core.evaluation import FunctionEvaluator, Perturbation  # noqa: E402

from common import table  # noqa: E402


def slow_objective(xs: list[torch.Tensor]) -> torch.Tensor:
    time.sleep(0.05)
    return sum(((x - 1) ** 2).sum() for x in xs)


def noop(xs: list[torch.Tensor]) -> float:
    return 0.0


def spsa_run(evaluator, steps: int, dim: int) -> tuple[float, list[torch.Tensor]]:
    x = [torch.linspace(-1, 1, dim).requires_grad_(True)]
    opt = tz.Optimizer(x, tz.m.SPSA(n_samples=8, seed=0), tz.m.LR(1e-2))
    opt.step(evaluator)  # warm-up step (workers up, first base fetched)
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.step(evaluator)
    return (time.perf_counter() - t0) / steps, [p.detach().clone() for p in x]


def bench_spsa(ray, steps: int) -> list[list[str]]:
    from tz_client.ray import RayEvaluator
    ev = RayEvaluator(slow_objective, num_workers=8, threads=1)
    seq_t, seq_x = spsa_run(FunctionEvaluator(slow_objective), steps, 1000)
    ray_t, ray_x = spsa_run(ev, steps, 1000)
    same = all(torch.equal(a, b) for a, b in zip(seq_x, ray_x))
    ev.close()
    return [["sequential (FunctionEvaluator)", f"{seq_t:.3f}", "1.0x", ""],
            ["RayEvaluator, 8 workers", f"{ray_t:.3f}", f"{seq_t / ray_t:.1f}x", "same trajectory" if same else "DIFFERENT"]]


def bench_overhead(ray, repeats: int, batch: int) -> list[list[str]]:
    from tz_client.ray import RayEvaluator
    ev = RayEvaluator(noop, num_workers=8, threads=1)
    task = ray.remote(num_cpus=1)(lambda xs: noop(xs))
    points = [[torch.full((10,), float(i))] for i in range(batch)]
    ray.get([task.remote(p) for p in points])
    ev.evaluate_batch(points)
    rows = []
    samples_ev, samples_task = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ev.evaluate_batch(points)
        samples_ev.append((time.perf_counter() - t0) / batch)
        t0 = time.perf_counter()
        ray.get([task.remote(p) for p in points])
        samples_task.append((time.perf_counter() - t0) / batch)
    e, t = statistics.median(samples_ev), statistics.median(samples_task)
    rows.append(["bare ray.get on remote tasks", f"{t * 1e3:.2f}", "1.0x"])
    rows.append(["RayEvaluator (8-actor pool)", f"{e * 1e3:.2f}", f"{e / t:.2f}x"])
    base = [torch.randn(1_000_000)]
    pert = ev.requests([Perturbation(base, seed=123, scale=1e-3)])[0]
    full = ev.requests([Perturbation(base, seed=123, scale=1e-3).materialize()])[0]
    ev.close()
    seed_bytes = len(pickle.dumps(pert[2:])) + 28 + 16  # seed/scale/distribution + object ref id + key
    full_bytes = len(pickle.dumps(full))
    rows.append(["request for a 1M-parameter point: as a seed", f"{seed_bytes} B", ""])
    rows.append(["request for a 1M-parameter point: as tensors", f"{full_bytes / 1e6:.1f} MB", ""])
    return rows


def bench_sharded(ray, steps: int) -> list[list[str]]:
    from tz_server.backends.local import LocalBackend
    from tz_server.backends.ray import RayBackend
    from tz_server.sessions.config import SessionConfig
    params = [torch.randn(1_000_000) for _ in range(10)]
    grads = [torch.randn(1_000_000) for _ in range(10)]
    modules = [tz.to_spec(tz.m.Adam()), tz.to_spec(tz.m.LR(1e-3))]
    out = []

    def run(backend, name, attrs) -> float:
        s, _ = backend.create(SessionConfig(name=name, kind="optimizer", modules=modules, user_attrs=attrs), params)
        if hasattr(s, "checkpoint_every"):
            s.checkpoint_every = 10 ** 9  # step time only (checkpoints are timed below)
        s.push(0, 0, [g.clone() for g in grads])
        times = []
        for k in range(1, steps + 1):
            gs = [g.clone() for g in grads]
            t0 = time.perf_counter()
            s.push(k, 0, gs)
            times.append(time.perf_counter() - t0)
        extra = ""
        if hasattr(s, "_call"):
            t0 = time.perf_counter()
            s.save(force=True)
            extra = f"checkpoint of every shard: {time.perf_counter() - t0:.2f} s"
        backend.delete(name)
        return statistics.median(times), extra

    local = LocalBackend(checkpoint_every=10 ** 9)
    t_local, _ = run(local, "local", {})
    out.append(["local backend, in process", f"{t_local * 1e3:.0f}", "1.0x", ""])
    rb = RayBackend(checkpoint_every=10 ** 9)
    for n in (1, 2):
        t, extra = run(rb, f"ray-{n}", {"tz.shards": n})
        out.append([f"Ray backend, {n} shard(s)", f"{t * 1e3:.0f}", f"{t / t_local:.2f}x", extra])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="few repeats (shared CPU)")
    args = ap.parse_args()
    steps = 3 if args.quick else 10
    import ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=16, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print(f"torch {torch.__version__}, ray {ray.__version__}, {os.cpu_count()} CPU(s), torch threads {torch.get_num_threads()}")
    print("\n## SPSA n_samples=8, objective sleeps 50 ms per evaluation (16 evaluations per step)\n")
    print(table(bench_spsa(ray, steps), ["evaluation", "s / step", "speed-up", "check"]))
    print("\n## Overhead per evaluation (no-op objective, batches of 64)\n")
    print(table(bench_overhead(ray, 5 if args.quick else 20, 64), ["path", "ms / evaluation", "ratio"]))
    print("\n## Adam on 10M parameters (ten 1M tensors): gradient push step\n")
    print(table(bench_sharded(ray, steps), ["session", "ms / step", "vs local", "note"]))
    ray.shutdown()


if __name__ == "__main__":
    main()
