"""The Ray backend (sessions and evaluations on a Ray cluster): not available yet."""
from __future__ import annotations

from typing import Any


class RayBackendUnavailable(RuntimeError):
    pass


def make_ray_backend(**options: Any) -> Any:
    raise RayBackendUnavailable(
        "the Ray backend is not available yet in this version of tz-server; use --backend local "
        "(the default). It will implement tz_server.backends.base.Backend.")
