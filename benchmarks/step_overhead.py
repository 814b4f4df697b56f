"""Step overhead of torchzero chains against torch.optim, measured in the same run.

Cases: (a) 1 tensor of 10M floats, (b) 200 tensors of 50k, (c) 200 tensors of 100.
Chains: ``Adam + LR`` against ``torch.optim.Adam`` (default, foreach, fused) and ``LR`` alone
against ``torch.optim.SGD``. With ``--reference`` the reference torchzero 0.4.4 (``.reference/``)
is timed too, in a subprocess. Prints ratios (ours / baseline; below 1 is faster).

    python benchmarks/step_overhead.py [--quick] [--reference]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import interleaved, table  # noqa: E402

CASES = {"a: 1x10M": (1, 10_000_000), "b: 200x50k": (200, 50_000), "c: 200x100": (200, 100)}


def make_params(n: int, size: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ps = [torch.randn(size, generator=g).requires_grad_(True) for _ in range(n)]
    for p in ps:
        p.grad = torch.randn(size, generator=g) * 1e-3
    return ps


def builders(tz) -> dict:
    return {
        "tz Adam+LR": lambda ps: tz.Optimizer(ps, tz.m.Adam(), tz.m.LR(1e-3)),
        "tz LR": lambda ps: tz.Optimizer(ps, tz.m.LR(1e-3)),
    }


BASELINES = {
    "torch Adam": lambda ps: torch.optim.Adam(ps, 1e-3),
    "torch Adam foreach": lambda ps: torch.optim.Adam(ps, 1e-3, foreach=True),
    "torch Adam fused": lambda ps: torch.optim.Adam(ps, 1e-3, fused=True),
    "torch SGD": lambda ps: torch.optim.SGD(ps, 1e-3),
}


def measure(tz, names: list[str], quick: bool) -> dict:
    out = {}
    for case, (n, size) in CASES.items():
        number = 3 if size >= 1_000_000 else (5 if size >= 10_000 else 50)
        repeats = 3 if quick else 7
        fns = {}
        for name, build in list(builders(tz).items()) + list(BASELINES.items()):
            if name not in names:
                continue
            opt = build(make_params(n, size))
            fns[name] = opt.step
        out[case] = interleaved(fns, repeats=repeats, number=number)
    return out


def reference_times(quick: bool) -> dict:
    root = Path(__file__).resolve().parent.parent
    code = (f"import sys; sys.path.insert(0, {str(root / '.reference')!r}); sys.path.insert(0, {str(Path(__file__).parent)!r});"
            "import json, torchzero as tz, step_overhead as so;"
            f"print(json.dumps(so.measure(tz, ['tz Adam+LR', 'tz LR', 'torch Adam', 'torch SGD'], {quick})))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(root / ".reference"))
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reference", action="store_true", help="also time the reference torchzero 0.4.4")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("TZ_BENCH_THREADS", torch.get_num_threads())))
    import torchzero as tz
    ours = measure(tz, list(builders(tz)) + list(BASELINES), args.quick)
    rows = []
    for case, t in ours.items():
        rows.append([case, f"{t['tz Adam+LR'] * 1e3:.3f}", f"{t['torch Adam'] * 1e3:.3f}",
                     f"{t['tz Adam+LR'] / t['torch Adam']:.2f}x", f"{t['tz Adam+LR'] / t['torch Adam foreach']:.2f}x",
                     f"{t['tz Adam+LR'] / t['torch Adam fused']:.2f}x", f"{t['tz LR'] / t['torch SGD']:.2f}x"])
    print(table(rows, ["case", "tz Adam+LR ms", "torch Adam ms", "vs Adam", "vs Adam foreach", "vs Adam fused", "tz LR vs SGD"]))
    if args.reference:
        ref = reference_times(args.quick)
        rows = [[case, f"{t['tz Adam+LR'] / t['torch Adam']:.2f}x", f"{t['tz LR'] / t['torch SGD']:.2f}x",
                 f"{ours[case]['tz Adam+LR'] / t['tz Adam+LR']:.2f}x"] for case, t in ref.items()]
        print()
        print(table(rows, ["case", "reference Adam+LR vs torch Adam", "reference LR vs SGD", "ours / reference (Adam+LR)"]))


if __name__ == "__main__":
    main()
