"""Keeps long-lived ask/tell streams from starving the server's RPC threads.

With gRPC's threaded server every open stream holds one RPC thread for as long as it is open. The
guard admits at most ``limit`` ask/tell streams at once (a client beyond that is told so and uses
unary calls instead) and ends streams that stayed idle for ``idle_timeout`` seconds (their client
opens a new one on its next call), so unary calls always find a free thread.
"""
from __future__ import annotations

import itertools
import threading
import time
from typing import Any


class StreamGuard:
    def __init__(self, limit: int, idle_timeout: float):
        if limit < 1:
            raise ValueError("the stream limit must be at least 1")
        if not idle_timeout > 0:
            raise ValueError("the stream idle timeout must be positive")
        self.limit = limit
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._open: dict[int, list[Any]] = {}  # key -> [context, last activity, busy]
        self._keys = itertools.count()
        self._watcher: threading.Thread | None = None
        self._stopped = threading.Event()

    def enter(self, context: Any) -> int | None:
        """Registers a new stream; None when ``limit`` streams are open already."""
        with self._lock:
            if len(self._open) >= self.limit:
                return None
            key = next(self._keys)
            self._open[key] = [context, time.monotonic(), False]
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="tz-stream-guard", daemon=True)
                self._watcher.start()
            return key

    def busy(self, key: int, busy: bool) -> None:
        """Marks the stream as answering a request (never idle then) or waiting for the next."""
        entry = self._open.get(key)
        if entry is not None:
            entry[1] = time.monotonic()
            entry[2] = busy

    def leave(self, key: int) -> None:
        with self._lock:
            self._open.pop(key, None)

    @property
    def open(self) -> int:
        return len(self._open)

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        period = min(1.0, self.idle_timeout / 4)
        while not self._stopped.wait(period):
            now = time.monotonic()
            with self._lock:
                idle = [e[0] for e in self._open.values() if not e[2] and now - e[1] > self.idle_timeout]
            for context in idle:
                context.cancel()  # the handler's next read fails and the stream ends
