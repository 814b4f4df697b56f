"""Fixtures of the Ray tests: one local Ray for the whole test session (per xdist worker)."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "service"))

pytest.importorskip("ray")

from ray_support import ensure_ray  # noqa: E402


@pytest.fixture(scope="session")
def ray_session():
    """The ``ray`` module, initialised once."""
    return ensure_ray()


@pytest.fixture(scope="session")
def ray_server(ray_session) -> Iterator:
    """An embedded server on the Ray backend (two shards by default, example objectives)."""
    import tz_server
    srv = tz_server.serve(backend="ray", ask_timeout=30.0, ray={
        "shards": 2, "eval_workers": 2,
        "objectives": {"sphere": "tz_server.backends.ray.examples:sphere"}})
    yield srv
    srv.stop()
