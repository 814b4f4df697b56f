"""Step overhead of first-order chains (RMSprop, Adan, Lion, Adagrad) against torch.optim and the reference.

In one run: our chains and the closest torch.optim optimizer are timed interleaved in this process,
the reference torchzero 0.4.4 (``.reference/``, first on ``sys.path``) in a subprocess, on the three
cases of the step-overhead benchmark: (a) 1 tensor of 10M floats, (b) 200 tensors of 50k,
(c) 200 tensors of 100. Prints milliseconds per step and ratios (below 1 is faster). The reference
subprocess also times torch, so that ``ours / reference`` can be read both raw and normalised by
each process's torch time.

    python benchmarks/first_order.py [--quick] [--no-reference] [--no-malloc-tune]

On some machines (sandboxes) a page fault is very expensive, and glibc returns freed memory to the
system between steps, so that every step faults its temporaries in again; the timings then measure
the allocator, not the optimizers. By default both processes therefore ask glibc to keep freed
memory (``mallopt``: no trimming, no mmap for large blocks); ``--no-malloc-tune`` measures without.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import interleaved, table  # noqa: E402

CASES = {"a: 1x10M": (1, 10_000_000), "b: 200x50k": (200, 50_000), "c: 200x100": (200, 100)}

# chain name -> (torchzero modules, closest torch.optim optimizer)
CHAINS = {
    "RMSprop": (lambda tz: [tz.m.RMSprop(), tz.m.LR(1e-3)], lambda ps: torch.optim.RMSprop(ps, lr=1e-3, alpha=0.99, eps=1e-8)),
    "Adan": (lambda tz: [tz.m.Adan(), tz.m.LR(1e-3)], lambda ps: torch.optim.Adam(ps, lr=1e-3)),
    "Lion": (lambda tz: [tz.m.Lion(), tz.m.LR(1e-3)], lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9)),
    "Adagrad": (lambda tz: [tz.m.Adagrad(), tz.m.LR(1e-3)], lambda ps: torch.optim.Adagrad(ps, lr=1e-3)),
}
TORCH_NAME = {"RMSprop": "torch RMSprop", "Adan": "torch Adam", "Lion": "torch SGD(momentum)", "Adagrad": "torch Adagrad"}


def make_params(n: int, size: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ps = [torch.randn(size, generator=g).requires_grad_(True) for _ in range(n)]
    for p in ps:
        p.grad = torch.randn(size, generator=g) * 1e-3
    return ps


def tune_malloc() -> bool:
    """Asks glibc to keep freed memory in the process (same for every process timed)."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
        return bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)) and bool(libc.mallopt(M_MMAP_MAX, 0))
    except OSError:
        return False


def measure(tz, quick: bool, malloc_tune: bool = True) -> dict:
    """{case: {"tz <chain>": seconds, "torch <chain>": seconds}}"""
    if malloc_tune:
        tune_malloc()
    out = {}
    for case, (n, size) in CASES.items():
        number = 2 if size >= 1_000_000 else (3 if size >= 10_000 else 30)
        repeats = 3 if quick else 7
        fns = {}
        for name, (build_tz, build_torch) in CHAINS.items():
            fns[f"tz {name}"] = tz.Optimizer(make_params(n, size), *build_tz(tz)).step
            fns[f"torch {name}"] = build_torch(make_params(n, size)).step
        # the first steps allocate state and warm the allocator (first-touch page faults are slow on
        # some machines): keep them out of the measurement
        out[case] = interleaved(fns, repeats=repeats, number=number, warmup=8 if size >= 10_000 else 3)
    return out


def reference_times(quick: bool, malloc_tune: bool) -> dict:
    root = HERE.parent
    code = (f"import sys; sys.path.insert(0, {str(root / '.reference')!r}); sys.path.insert(0, {str(HERE)!r});"
            "import json, torch, torchzero as tz, first_order as fo;"
            f"assert {str(root / '.reference')!r} in tz.__file__;"
            f"torch.set_num_threads({torch.get_num_threads()});"
            f"print(json.dumps(fo.measure(tz, {quick}, {malloc_tune})))")
    res = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, cwd=str(root / ".reference"))
    if res.returncode != 0:
        raise RuntimeError(f"reference timing failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats (use on a shared machine)")
    ap.add_argument("--no-reference", action="store_true", help="do not time the reference torchzero 0.4.4")
    ap.add_argument("--no-malloc-tune", action="store_true", help="leave glibc's trimming of freed memory on")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("TZ_BENCH_THREADS", torch.get_num_threads())))
    import torchzero as tz
    tune = not args.no_malloc_tune
    ours = measure(tz, args.quick, tune)
    ref = None if args.no_reference else reference_times(args.quick, tune)
    rows = []
    for case, t in ours.items():
        for name in CHAINS:
            mine, base = t[f"tz {name}"], t[f"torch {name}"]
            row = [case, name, f"{mine * 1e3:.3f}", f"{base * 1e3:.3f}", f"{mine / base:.2f}x ({TORCH_NAME[name]})"]
            if ref is not None:
                r, rbase = ref[case][f"tz {name}"], ref[case][f"torch {name}"]
                row += [f"{r * 1e3:.3f}", f"{mine / r:.2f}x", f"{(mine / base) / (r / rbase):.2f}x"]
            rows.append(row)
    header = ["case", "chain", "ours ms", "torch ms", "ours / torch"]
    if ref is not None:
        header += ["reference ms", "ours / reference", "ours / reference (torch-normalised)"]
    print(table(rows, header))


if __name__ == "__main__":
    main()
