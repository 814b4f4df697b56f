"""One local Ray per test process (each pytest-xdist worker gets its own, small, without a dashboard)."""
from __future__ import annotations

import os
import sys
import time

NUM_CPUS = 4
"""Logical CPUs of the test cluster (scheduling slots: evaluation workers and shards are light)."""


def ensure_ray():
    """Starts the process's local Ray once and returns the ``ray`` module; it stops at exit."""
    import ray
    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        for attempt in range(3):
            try:
                ray.init(num_cpus=NUM_CPUS, include_dashboard=False, log_to_driver=False, configure_logging=False)
                break
            except Exception as e:  # a local cluster that failed to come up (seen rarely with 2 xdist workers)
                print(f"ray_support: ray.init failed (attempt {attempt + 1}): {type(e).__name__}: {e}", file=sys.stderr)
                ray.shutdown()
                if attempt == 2:
                    raise
                time.sleep(2.0)
    return ray


def gcs_address() -> str:
    """The address a ``tz-server --ray-address`` subprocess joins the test cluster with."""
    import ray
    return ray.get_runtime_context().gcs_address
