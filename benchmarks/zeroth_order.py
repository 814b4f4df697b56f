"""Zeroth-order benchmark: SPSA / RDSA / GaussianSmoothing against Nevergrad's SPSA and the reference.

For a 10- and a 100-dimensional ill-conditioned quadratic (condition number 100, rotated) at a
fixed budget of function evaluations, prints the best loss seen and evaluations per second of

* our ``SPSA``, ``RDSA`` and ``GaussianSmoothing`` (each followed by ``LR``), with a plain closure;
* the reference torchzero 0.4.4 (``.reference/``, run in a subprocess) with the same settings;
* Nevergrad's ``SPSA`` driven by ask/tell in-process.

Then the wall-time speedup of :class:`torchzero.core.evaluation.ThreadPoolEvaluator` (4 threads)
over sequential evaluation, for SPSA with ``n_samples=4`` on an objective that sleeps 20 ms per
evaluation (target >= 3x), and whether both runs give the same trajectory.

Usage: ``python benchmarks/zeroth_order.py [--quick]`` (``--quick``: smaller budgets, a few seconds).
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import table  # noqa: E402

# (name, build, lr) - the same settings for us and the reference
METHODS = [
    ("SPSA", "tz.m.SPSA(h=1e-3), tz.m.LR({lr})", 4e-3),
    ("RDSA", "tz.m.RDSA(h=1e-3), tz.m.LR({lr})", 4e-3),
    ("GaussianSmoothing", "tz.m.GaussianSmoothing(h=1e-2, n_samples=10), tz.m.LR({lr})", 1e-2),
]

# runs in this interpreter (ours) or in a clean one whose first torchzero is the reference
RUNNER = r'''
import json, math, sys, time, torch
if sys.argv[1] == "ref":
    sys.path.insert(0, sys.argv[2])
else:
    sys.path.insert(0, sys.argv[2].replace("/.reference", ""))
import torchzero as tz
if sys.argv[1] == "ref":
    assert ".reference" in tz.__file__, tz.__file__
spec = json.loads(sys.argv[3])

def quadratic(n):
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    eig = torch.logspace(0, 2, n, dtype=torch.float64)
    A = q @ torch.diag(eig) @ q.T
    x0 = torch.ones(n, dtype=torch.float64)
    return (lambda x: 0.5 * x @ A @ x), x0

out = {}
for key, (build, n, budget) in spec.items():
    fn, x0 = quadratic(n)
    torch.manual_seed(0)
    x = x0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], *eval("[" + build + "]", {"tz": tz}))
    best = [math.inf]
    def closure(backward=True):
        with torch.no_grad():
            loss = fn(x)
        v = float(loss)
        if v < best[0]:
            best[0] = v
        return loss
    t0 = time.perf_counter()
    while opt.num_evaluations < budget:
        opt.step(closure)
    dt = time.perf_counter() - t0
    out[key] = {"best": best[0], "evals": opt.num_evaluations, "seconds": dt}
print("RESULT " + json.dumps(out))
'''


def run_torchzero(which: str, spec: dict) -> dict:
    ref = str(ROOT / ".reference")
    p = subprocess.run([sys.executable, "-I", "-c", RUNNER, which, ref, json.dumps(spec)], capture_output=True,
                       text=True, cwd=str(ROOT))
    if p.returncode != 0:
        raise RuntimeError(f"{which} run failed:\n{p.stderr[-3000:]}")
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def run_nevergrad(n: int, budget: int) -> dict:
    import nevergrad as ng
    import numpy as np
    import torch
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    A = (q @ torch.diag(torch.logspace(0, 2, n, dtype=torch.float64)) @ q.T).numpy()
    fn = lambda x: 0.5 * float(x @ A @ x)
    param = ng.p.Array(init=np.ones(n))
    opt = ng.optimizers.SPSA(parametrization=param, budget=budget)
    opt.parametrization.random_state = np.random.RandomState(0)
    best = math.inf
    t0 = time.perf_counter()
    for _ in range(budget):
        cand = opt.ask()
        v = fn(cand.value)
        best = min(best, v)
        opt.tell(cand, v)
    return {"best": best, "evals": budget, "seconds": time.perf_counter() - t0}


def thread_pool_speedup(steps: int, sleep: float = 0.02, threads: int = 4) -> dict:
    import torch
    import torchzero as tz
    from torchzero.core.evaluation import FunctionEvaluator, ThreadPoolEvaluator

    def fn(xs):
        time.sleep(sleep)
        return (xs[0] ** 2).sum()

    def run(evaluator):
        torch.manual_seed(0)
        x = torch.linspace(-1, 1, 20, dtype=torch.float64).requires_grad_(True)
        opt = tz.Optimizer([x], tz.m.SPSA(h=1e-3, n_samples=4, seed=0), tz.m.LR(1e-2))
        t0 = time.perf_counter()
        for _ in range(steps):
            opt.step(evaluator)
        return time.perf_counter() - t0, x.detach().clone(), opt.num_evaluations

    t_seq, x_seq, n_seq = run(FunctionEvaluator(fn))
    pool = ThreadPoolEvaluator(fn, max_workers=threads)
    try:
        t_par, x_par, n_par = run(pool)
    finally:
        pool.close()
    return {"sequential_s": t_seq, "threads_s": t_par, "speedup": t_seq / t_par, "evals": n_seq,
            "identical": bool(torch.equal(x_seq, x_par)) and n_seq == n_par}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small budgets (a few seconds)")
    args = ap.parse_args()
    budgets = {10: 500, 100: 2000} if args.quick else {10: 4000, 100: 20000}
    spec = {}
    for n, budget in budgets.items():
        for name, build, lr in METHODS:
            # the variance of a random-direction estimate grows with the dimension: scale lr by 10/n
            spec[f"{name}|{n}"] = [build.format(lr=lr * 10 / n), n, budget]
    ours = run_torchzero("ours", spec)
    ref = run_torchzero("ref", spec)
    rows = []
    for n, budget in budgets.items():
        ng_res = run_nevergrad(n, budget)
        rows.append([f"{n}", str(budget), "nevergrad SPSA (ask/tell)", f"{ng_res['best']:.4g}", f"{ng_res['evals'] / ng_res['seconds']:.0f}"])
        for name, _build, _lr in METHODS:
            k = f"{name}|{n}"
            for who, res in (("ours", ours[k]), ("reference 0.4.4", ref[k])):
                rows.append([f"{n}", str(budget), f"{name} ({who})", f"{res['best']:.4g}", f"{res['evals'] / res['seconds']:.0f}"])
    print(f"Rotated quadratic 0.5 x'Ax, eigenvalues 1..100 (log-spaced), x0 = ones; best loss at a fixed budget"
          f"{' (quick)' if args.quick else ''}; learning rates scaled by 10/dim")
    print(table(rows, ["dim", "budget", "method", "best loss", "evals/s"]))
    sp = thread_pool_speedup(steps=5 if args.quick else 20)
    print()
    print(f"ThreadPoolEvaluator(4 threads) vs sequential, SPSA n_samples=4, 20 ms per evaluation, {sp['evals']} evaluations: "
          f"sequential {sp['sequential_s']:.2f} s, threads {sp['threads_s']:.2f} s, speedup {sp['speedup']:.2f}x "
          f"(target >= 3x); identical trajectories: {sp['identical']}")


if __name__ == "__main__":
    main()
