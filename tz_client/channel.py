"""Connections: channel options, TLS, the token, and retrying calls across server restarts."""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import grpc

from .errors import from_rpc_error
from .wire import CHANNEL_OPTIONS, Stub

T = TypeVar("T")

RETRYABLE = (grpc.StatusCode.UNAVAILABLE,)


class Connection:
    """A channel to one server, its stub, call metadata and retry policy.

    Args:
        address: ``host:port``.
        token: sent as ``authorization: Bearer <token>``.
        tls: use TLS (implied by ``root_certificates``).
        root_certificates: PEM bytes or a path to them, to trust a private CA / self-signed server.
        retry_timeout: how long calls keep retrying while the server is unreachable (restarting).
    """

    def __init__(self, address: str, token: str | None = None, *, tls: bool = False,
                 root_certificates: bytes | str | Path | None = None, retry_timeout: float = 60.0):
        self.address = address
        self.retry_timeout = retry_timeout
        self.metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        if root_certificates is not None and not isinstance(root_certificates, bytes):
            root_certificates = Path(root_certificates).read_bytes()
        if tls or root_certificates is not None:
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self.channel = grpc.secure_channel(address, creds, options=CHANNEL_OPTIONS)
        else:
            self.channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.stub = Stub(self.channel)
        self._on_close: list[Callable[[], None]] = []

    def on_close(self, fn: Callable[[], None]) -> None:
        """Calls ``fn`` when the connection closes (before the channel does)."""
        self._on_close.append(fn)

    def forget_on_close(self, fn: Callable[[], None]) -> None:
        if fn in self._on_close:
            self._on_close.remove(fn)

    def call(self, fn: Callable[[], T], retry: bool = True) -> T:
        """Runs ``fn`` (which makes one or more calls), retrying while the server is unavailable.

        Every call of the service is safe to retry: steps and tells carry ids that make them
        exactly-once on the server.
        """
        deadline = time.monotonic() + self.retry_timeout
        delay = 0.05
        while True:
            try:
                return fn()
            except grpc.RpcError as e:
                code = e.code() if hasattr(e, "code") else None
                if not retry or code not in RETRYABLE or time.monotonic() >= deadline:
                    raise from_rpc_error(e) from None
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)

    def close(self) -> None:
        """Runs the ``on_close`` callbacks, then closes the channel; re-raises the first callback
        error (e.g. a refused tell that was sent without waiting) once everything is closed."""
        first: BaseException | None = None
        for fn in list(self._on_close):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - reported after the channel is closed
                first = first or e
        self._on_close.clear()
        self.channel.close()
        if first is not None:
            raise from_rpc_error(first) if isinstance(first, grpc.RpcError) else first
