"""L-BFGS benchmark: ``tz.m.LBFGS`` against ``torch.optim.LBFGS`` at equal closure calls.

On a 1M-parameter ill-conditioned quadratic ``0.5 sum_i d_i x_i^2 - b^T x`` (``d`` log-spaced from 1
to 1e3, float32), both optimizers run until they have made the same number of closure calls, in the
same process, interleaved (so machine noise hits both alike), and the script prints wall time per
closure call, the ratio ours / torch (target <= 1.1) and the final losses:

* fixed step: ``tz.m.LBFGS(), tz.m.LR(1)`` against ``torch.optim.LBFGS(lr=1, max_iter=1)`` (one
  closure call per step each);
* strong Wolfe line search: ``tz.m.LBFGS(), tz.m.StrongWolfe()`` against
  ``torch.optim.LBFGS(max_iter=1, line_search_fn="strong_wolfe", max_eval=25)``. ``max_eval`` must
  be set explicitly: its default, ``max_iter * 5 // 4``, is 1 for ``max_iter=1``, which truncates
  torch's line search after its first trial.

Both use ``history_size=10`` and the same tolerances (none that stop early).

Usage: ``python benchmarks/lbfgs.py [--quick] [--n N] [--device cuda]`` (``--quick``: 30 closure
calls per run, 3 repeats, one CPU thread).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torchzero as tz  # noqa: E402
from common import table  # noqa: E402


def problem(n: int, device: str):
    d = torch.logspace(0, 3, n, device=device)
    b = torch.sin(torch.arange(n, device=device, dtype=torch.float32))
    x0 = torch.cos(torch.arange(n, device=device, dtype=torch.float32))
    return d, b, x0


def run(kind: str, line_search: bool, n: int, calls: int, device: str) -> tuple[float, float, int]:
    """Runs until ``calls`` closure calls; returns (seconds, final loss, closure calls made)."""
    d, b, x0 = problem(n, device)
    x = x0.clone().requires_grad_(True)
    if kind == "torchzero":
        last = tz.m.StrongWolfe() if line_search else tz.m.LR(1.0)
        opt = tz.Optimizer([x], tz.m.LBFGS(history_size=10), last)
    else:
        kw = dict(line_search_fn="strong_wolfe", max_eval=25) if line_search else {}
        opt = torch.optim.LBFGS([x], lr=1, max_iter=1, history_size=10, tolerance_grad=0.0, tolerance_change=0.0, **kw)
    count = [0]

    def closure(backward: bool = True):
        count[0] += 1
        loss = 0.5 * (d * x * x).sum() - (b * x).sum()
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss

    plain = lambda: closure(True)  # torch.optim calls closure() with no argument
    step_closure = closure if kind == "torchzero" else plain
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    while count[0] < calls:
        opt.step(step_closure)
    if device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    with torch.no_grad():
        loss = float(0.5 * (d * x * x).sum() - (b * x).sum())
    return dt, loss, count[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    calls, repeats = (30, 3) if args.quick else (300, 5)
    if args.quick:  # the CPU is shared: one thread keeps the timings stable
        torch.set_num_threads(1)
    rows = []
    for ls in (False, True):
        for kind in ("torchzero", "torch"):  # warm-up
            run(kind, ls, args.n, 5, args.device)
        times = {"torchzero": [], "torch": []}
        info = {}
        for _ in range(repeats):
            for kind in ("torchzero", "torch"):
                dt, loss, c = run(kind, ls, args.n, calls, args.device)
                times[kind].append(dt / c)
                info[kind] = (loss, c)
        med = {k: statistics.median(v) for k, v in times.items()}
        name = "LBFGS + StrongWolfe" if ls else "LBFGS + LR(1)"
        rows.append([name, f"{med['torchzero'] * 1e3:.2f}", f"{med['torch'] * 1e3:.2f}",
                     f"{med['torchzero'] / med['torch']:.3f}", f"{info['torchzero'][0]:.6g}", f"{info['torch'][0]:.6g}",
                     f"{info['torchzero'][1]} / {info['torch'][1]}"])
    print(f"n = {args.n}, device = {args.device}, threads = {torch.get_num_threads()}, closure calls per run = {calls}, repeats = {repeats}")
    print(table(rows, ["config", "tz ms/call", "torch ms/call", "ratio", "tz final loss", "torch final loss", "calls tz / torch"]))


if __name__ == "__main__":
    main()
