"""Fixtures of the service suite: every client-facing test runs against an embedded server and a
``tz-server`` subprocess (real gRPC on 127.0.0.1, free ports)."""
from __future__ import annotations

import importlib.util
import itertools
import os
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from tzsvc_support import ServerProcess  # noqa: E402

import tz_client  # noqa: E402
import tz_server  # noqa: E402

DEPLOYMENTS = ["embedded", "subprocess"]
if importlib.util.find_spec("ray") is not None:
    DEPLOYMENTS.append("ray")  # the same client-facing suite on the Ray backend (sessions in Ray actors)


def pytest_collection_modifyitems(items: list) -> None:
    for item in items:  # tests on the Ray deployment carry the `ray` marker (-m "not ray" skips them)
        spec = getattr(item, "callspec", None)
        if spec is not None and spec.params.get("deployment") == "ray":
            item.add_marker(pytest.mark.ray)


class Deployment:
    def __init__(self, kind: str, address: str):
        self.kind = kind
        self.address = address


@pytest.fixture(scope="session", params=DEPLOYMENTS)
def deployment(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    if request.param == "embedded":
        srv = tz_server.serve(ask_timeout=30.0)
        yield Deployment("embedded", srv.address)
        srv.stop()
    elif request.param == "ray":
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "ray"))
        from ray_support import ensure_ray
        ensure_ray()
        srv = tz_server.serve(ask_timeout=30.0, backend="ray")
        yield Deployment("ray", srv.address)
        srv.stop()
    else:
        proc = ServerProcess("--ask-timeout", "30")
        yield Deployment("subprocess", proc.address)
        proc.stop()


@pytest.fixture
def client(deployment: Deployment) -> Iterator[tz_client.Client]:
    c = tz_client.Client(deployment.address, retry_timeout=5.0)
    yield c
    c.close()


_counter = itertools.count()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A session name unique in this test run."""
    base = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:80]
    return f"{base}-{os.getpid()}-{next(_counter)}"
