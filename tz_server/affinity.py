"""Pinning the server process to a set of CPUs (``tz-server --cpus``).

A study's step passes between a gRPC thread and the study's stepping thread twice per round trip;
when the two run on different cores each hand-off also moves the step's data between the cores'
caches. On small hosts, keeping the server on its own cores (and clients on others) measurably
raises ask/tell throughput (``benchmarks/RESULTS.md``). The affinity is set on the calling thread
before the server starts, so every thread the server creates later (gRPC's, the sessions', torch's
intra-op pool) inherits it; torch's intra-op pool is sized to the pinned CPUs.
"""
from __future__ import annotations

import os


def parse_cpus(text: str) -> set[int]:
    """CPU numbers from a list like ``0``, ``0-3`` or ``0,2,4-5`` (the ``taskset -c`` syntax)."""
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"--cpus {text!r}: expected CPU numbers and ranges such as 0, 0-3 or 0,2,4-5")
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first:
            raise ValueError(f"--cpus {text!r}: empty range {part}")
        cpus.update(range(first, last + 1))
    return cpus


def pin_to_cpus(cpus: set[int]) -> None:
    """Restricts this process (the calling thread and every thread started after) to ``cpus``."""
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError("--cpus needs an operating system with sched_setaffinity (Linux)")
    available = os.sched_getaffinity(0)
    missing = sorted(cpus - available)
    if missing:
        raise ValueError(f"--cpus: CPU(s) {', '.join(map(str, missing))} not available to this process "
                         f"(available: {', '.join(map(str, sorted(available)))})")
    os.sched_setaffinity(0, cpus)
    import torch
    torch.set_num_threads(len(cpus))
