"""LocalBackend.create under concurrency: one session per name, joiners wait for it."""
from __future__ import annotations

import threading
import time

import pytest
import torch

import torchzero as tz
from tz_server.backends.local import LocalBackend
from tz_server.errors import AlreadyExists
from tz_server.sessions.config import OPTIMIZER, SessionConfig


class SlowBackend(LocalBackend):
    def _make(self, config, params, state=None, journal=()):
        time.sleep(0.3)  # a slow construction, so that the other creators arrive meanwhile
        return super()._make(config, params, state, journal)


def config(name: str) -> SessionConfig:
    return SessionConfig(name=name, kind=OPTIMIZER, modules=[tz.to_spec(tz.m.LR(0.1))], workers=2)


def test_concurrent_create_with_exist_ok_builds_one_session() -> None:
    backend = SlowBackend()
    results: list = []

    def create() -> None:
        results.append(backend.create(config("shared"), [torch.zeros(3)], exist_ok=True))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sessions = {id(s) for s, _ in results}
    assert len(results) == 4 and len(sessions) == 1
    assert sorted(created for _, created in results) == [False, False, False, True]
    backend.close()


def test_concurrent_create_without_exist_ok_is_refused() -> None:
    backend = SlowBackend()
    t = threading.Thread(target=lambda: backend.create(config("one"), [torch.zeros(3)]))
    t.start()
    time.sleep(0.1)
    with pytest.raises(AlreadyExists, match="being created"):
        backend.create(config("one"), [torch.zeros(3)])
    t.join()
    with pytest.raises(AlreadyExists, match="already exists"):
        backend.create(config("one"), [torch.zeros(3)])
    backend.close()
