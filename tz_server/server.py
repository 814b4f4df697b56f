"""Assembles the gRPC server: servicer, backend, auth, TLS, health, reflection, metrics."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from tz_client.wire import SERVER_OPTIONS, SERVICE, server_handler

from .auth import TokenAuth
from .backends import make_backend
from .metrics import Metrics
from .servicer import Servicer
from .stream_guard import StreamGuard

log = logging.getLogger("tz_server")


@dataclass
class ServerOptions:
    """Everything ``tz-server`` and :func:`serve` accept.

    Attributes:
        host / port: where to listen (``port=0`` picks a free port).
        backend: ``local`` (default) or ``ray`` (sessions on a Ray cluster).
        device: default device of sessions (``cpu``, ``cuda``, ``cuda:N``).
        state_dir: save sessions there and restore them on start (None: in memory only).
        token: require ``authorization: Bearer <token>`` on every call.
        tls_cert / tls_key: PEM files; serve TLS instead of plaintext.
        metrics_port: serve Prometheus metrics on this HTTP port (0: a free one; None: off).
        max_workers: threads serving RPCs (long-polling asks, closure steps and open ask/tell streams
            hold one each). At most half of them serve ask/tell streams; clients beyond that use
            unary calls.
        stream_idle_timeout: an ask/tell stream with no request for this many seconds is ended, which
            frees its thread (its client opens a new one on its next call).
        ask_timeout: default seconds before an unanswered trial is handed out again.
        checkpoint_every: training sessions are saved every this many steps.
        checkpoint_interval: studies are saved at most this often (seconds; the journal covers the rest).
        fsync_journal: fsync the tell journal on every tell.
        max_params_bytes: largest parameter set a session may have.
        sync_timeout: default seconds the gradient pushes of one step of a ``workers > 1`` session
            wait for the missing ranks; then the step is abandoned (nothing applied) and the waiting
            workers get ABORTED naming the missing ranks. A session may set its own.
        piece_bytes: local backend: sessions created with ``pipelined=True`` (element-wise chains:
            Adam, LR, HeavyBall...) step their gradient pushes in pieces of about this many bytes
            while they arrive, and the new parameters go back while later gradients still arrive
            (0: never; such sessions receive everything, then step).
        ray: options of the Ray backend (``address``, ``shards``, ``objectives``, ``eval_workers``,
            ``shard_cpus``, ``shard_gpus``, ``ray_init``; see ``tz_server.backends.ray.RayBackend``).
    """

    host: str = "127.0.0.1"
    port: int = 0
    backend: str = "local"
    device: str = "cpu"
    state_dir: str | None = None
    token: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    metrics_port: int | None = None
    max_workers: int = 64
    stream_idle_timeout: float = 30.0
    ask_timeout: float = 60.0
    checkpoint_every: int = 1
    checkpoint_interval: float = 1.0
    fsync_journal: bool = False
    max_params_bytes: int = 16 << 30
    sync_timeout: float = 300.0
    piece_bytes: int = 4 << 20
    ray: dict[str, Any] = field(default_factory=dict)


class Server:
    """A running server; ``.address`` is ``host:port``. Use as a context manager or call :meth:`stop`."""

    def __init__(self, options: ServerOptions):
        self.options = o = options
        if bool(o.tls_cert) != bool(o.tls_key):
            raise ValueError("TLS needs both a certificate and a key")
        if not 0 < o.sync_timeout < float("inf"):
            raise ValueError("sync_timeout must be a positive number of seconds")
        if o.ray and o.backend != "ray":
            raise ValueError(f"Ray options ({', '.join(sorted(o.ray))}) need backend='ray'")
        if o.piece_bytes < 0:
            raise ValueError("piece_bytes must be >= 0")
        extra = {"piece_bytes": o.piece_bytes} if o.backend == "local" else {}
        self.backend = make_backend(o.backend, device=o.device, state_dir=o.state_dir,
                                    checkpoint_every=o.checkpoint_every, checkpoint_interval=o.checkpoint_interval,
                                    ask_timeout=o.ask_timeout, fsync_journal=o.fsync_journal, **extra, **o.ray)
        try:
            self._build(o)
        except BaseException:
            self.backend.close()  # (releases the state directory)
            raise
        self.metrics_port: int | None = None
        self._stopped = False

    def _build(self, o: ServerOptions) -> None:
        """The gRPC server around the backend, bound to its port (not started)."""
        self.metrics = Metrics(self.backend.list)
        interceptors = [TokenAuth(o.token)] if o.token else []
        self._grpc = grpc.server(ThreadPoolExecutor(o.max_workers, thread_name_prefix="tz-rpc"),
                                 interceptors=interceptors, options=SERVER_OPTIONS,
                                 maximum_concurrent_rpcs=o.max_workers * 4)
        self.servicer = Servicer(self.backend, self.metrics, o.max_params_bytes, sync_timeout=o.sync_timeout,
                                 streams=StreamGuard(max(1, o.max_workers // 2), o.stream_idle_timeout))
        self._grpc.add_generic_rpc_handlers((server_handler(self.servicer),))
        self.health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        reflection.enable_server_reflection(
            (SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), self._grpc)
        bind = f"{_bracket(o.host)}:{o.port}"
        if o.tls_cert:
            creds = grpc.ssl_server_credentials([(Path(o.tls_key).read_bytes(), Path(o.tls_cert).read_bytes())])
            self.port = self._grpc.add_secure_port(bind, creds)
        else:
            self.port = self._grpc.add_insecure_port(bind)
        if not self.port:
            raise OSError(f"cannot listen on {bind}")
        self.address = f"{_bracket(o.host)}:{self.port}"

    def start(self) -> "Server":
        self._grpc.start()
        if self.options.metrics_port is not None:
            self.metrics_port = self.metrics.serve(self.options.metrics_port, self.options.host)
        for name in ("", SERVICE):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(f"listening on {self.address}", extra={"backend": self.options.backend, "device": self.options.device,
                                                       "tls": bool(self.options.tls_cert), "auth": bool(self.options.token),
                                                       "state_dir": self.options.state_dir,
                                                       "metrics_port": self.metrics_port})
        return self

    def stop(self, grace: float | None = 1.0) -> None:
        """Stops serving, then stops every session (writing final checkpoints)."""
        if self._stopped:
            return
        self._stopped = True
        self.health.enter_graceful_shutdown()
        # sessions first: it wakes the calls that wait inside them, so the grace period is short
        self.backend.close()
        self.servicer.streams.stop()
        self._grpc.stop(grace).wait()
        self.metrics.stop()

    def wait(self, timeout: float | None = None) -> bool:
        return self._grpc.wait_for_termination(timeout)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Server({self.address}, backend={self.options.backend})"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def serve(host: str = "127.0.0.1", port: int = 0, **options: Any) -> Server:
    """Starts an embedded server in this process and returns its handle.

    ``options`` are the fields of :class:`ServerOptions` (``device``, ``state_dir``, ``token``,
    ``metrics_port``...). ``with tz_server.serve() as srv: Client(srv.address)``.
    """
    known = {f.name for f in fields(ServerOptions)}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"unknown server option(s): {', '.join(sorted(unknown))}")
    return Server(ServerOptions(host=host, port=port, **options)).start()
