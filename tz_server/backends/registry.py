"""Sessions by name, shared by the backends.

A name is reserved while its session is being built (building Ray shards takes seconds): a second
creator with ``exist_ok`` waits for the outcome and joins the session, one without it is told the
name is taken. Lookups never see a session that is not fully built.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch

from ..errors import AlreadyExists, NotFound
from ..sessions.config import SessionConfig


class SessionRegistry:
    def __init__(self) -> None:
        self._sessions: dict[str, Any] = {}
        self._creating: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def add(self, name: str, session: Any) -> None:
        """Registers a session built elsewhere (restored from a checkpoint)."""
        with self._lock:
            self._sessions[name] = session

    def create(self, config: SessionConfig, params: list[torch.Tensor], exist_ok: bool,
               make: Callable[[], Any]) -> tuple[Any, bool]:
        """``(session, True)`` built by ``make()``, or ``(existing, False)`` with ``exist_ok``."""
        name = config.name
        while True:
            with self._lock:
                old = self._sessions.get(name)
                if old is None and name not in self._creating:
                    done = self._creating[name] = threading.Event()
                    break
                pending = self._creating.get(name)
            if old is not None:
                return _join(old, config, params, exist_ok), False
            if not exist_ok:
                raise AlreadyExists(f"session {name!r} is being created")
            pending.wait(timeout=120)  # then join it, or build it if that creation failed
        try:
            session = make()
            with self._lock:
                self._sessions[name] = session
        finally:
            with self._lock:
                self._creating.pop(name, None)
            done.set()
        return session, True

    def get(self, name: str) -> Any:
        s = self._sessions.get(name)
        if s is None:
            raise NotFound(f"no session named {name!r}")
        return s

    def list(self) -> list[Any]:
        with self._lock:
            return list(self._sessions.values())

    def pop(self, name: str) -> Any | None:
        with self._lock:
            return self._sessions.pop(name, None)

    def drain(self) -> list[Any]:
        """Removes and returns every session."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        return sessions


def _join(old: Any, config: SessionConfig, params: list[torch.Tensor], exist_ok: bool) -> Any:
    if not exist_ok:
        raise AlreadyExists(f"session {config.name!r} already exists")
    layout = [(tuple(p.shape), p.dtype) for p in params]
    if old.kind != config.kind or old.layout != layout:
        raise AlreadyExists(f"session {config.name!r} exists with a different kind or parameter layout")
    return old
