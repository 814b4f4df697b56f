"""Prometheus metrics: RPC latencies and counts, and session totals read at scrape time.

Each server has its own registry, so several embedded servers can live in one process.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

BUCKETS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _Sessions(Collector):
    def __init__(self, sessions: Callable[[], Iterable[Any]]):
        self.sessions = sessions

    def collect(self) -> Iterable[GaugeMetricFamily]:
        count = GaugeMetricFamily("tz_sessions", "Sessions hosted", labels=["kind"])
        steps = GaugeMetricFamily("tz_steps", "Optimizer steps taken by the hosted sessions", labels=["kind"])
        evals = GaugeMetricFamily("tz_evaluations", "Evaluations received by the hosted sessions", labels=["kind"])
        failing = GaugeMetricFamily("tz_persist_failing", "Sessions whose last checkpoint or journal write failed",
                                    labels=["kind"])
        failures = GaugeMetricFamily("tz_persist_failures", "Failed checkpoint and journal writes of the hosted "
                                     "sessions", labels=["kind"])
        totals: dict[str, list[int]] = {}
        for s in self.sessions():
            t = totals.setdefault(s.kind, [0, 0, 0, 0, 0])
            t[0] += 1
            t[1] += s.step
            t[2] += s.evaluations
            t[3] += bool(s.writes.error)
            t[4] += s.writes.failures
        for kind, values in sorted(totals.items()):
            for family, v in zip((count, steps, evals, failing, failures), values):
                family.add_metric([kind], v)
        return [count, steps, evals, failing, failures]


class Metrics:
    """The server's metrics; :meth:`observe` is called once per RPC."""

    def __init__(self, sessions: Callable[[], Iterable[Any]] = lambda: ()):
        self.registry = CollectorRegistry()
        self.latency = Histogram("tz_rpc_latency_seconds", "RPC latency", ["method"], registry=self.registry,
                                 buckets=BUCKETS)
        self.rpcs = Counter("tz_rpcs", "RPCs handled", ["method", "code"], registry=self.registry)
        self.registry.register(_Sessions(sessions))
        self._http: Any = None

    def observe(self, method: str, seconds: float, code: str) -> None:
        # the labelled children are looked up once (a labels() call takes a lock and builds a key)
        try:
            lat, count = self._children[(method, code)]
        except (KeyError, AttributeError):
            if not hasattr(self, "_children"):
                self._children: dict = {}
            lat, count = self._children[(method, code)] = (self.latency.labels(method), self.rpcs.labels(method, code))
        lat.observe(seconds)
        count.inc()

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serves ``/metrics`` over HTTP; returns the port (``port=0`` picks a free one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._http = server
        return server.server_port

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
