"""Ask/tell over the long-lived AskTell stream: one stream per thread, errors end only the stream
(the next call opens another), and servers without the RPC are served by unary Tell."""
from __future__ import annotations

import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import torch

import torchzero as tz
import tz_client
import tz_server
from tz_client.errors import InvalidArgument
from tz_client.wire import METHODS, SERVICE
from tz_server.backends.local import LocalBackend
from tz_server.metrics import Metrics
from tz_server.servicer import Servicer


def metric(srv, line: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{srv.metrics_port}/metrics", timeout=5).read().decode()
    for row in text.splitlines():
        if row.startswith(line + " "):
            return float(row.split()[-1])
    return 0.0


def test_asks_and_tells_share_one_stream_per_thread():
    with tz_server.serve(metrics_port=0) as srv:
        c = tz_client.Client(srv.address)
        study = c.create_study("s", torch.zeros(3), [tz.m.SPSA(), tz.m.LR(1e-2)], seed=0)
        for _ in range(5):
            t = study.ask()
            study.tell(t, float(t.params.sum()))
        told = 5
        trials = study.ask(n=2)
        for _ in range(5):
            told += len(trials)
            trials = study.tell_and_ask(trials, [float(t.params.sum()) for t in trials], n=2)
        assert len(study._asktell._open) == 1
        assert metric(srv, 'tz_rpc_latency_seconds_count{method="Tell"}') == 10
        assert metric(srv, 'tz_rpc_latency_seconds_count{method="Ask"}') == 6
        assert study.info().evaluations == told
        study.tell(trials, [float(t.params.sum()) for t in trials])

        def worker(k: int) -> None:
            for _ in range(3):
                t = study.ask()
                study.tell(t, float(t.params.sum()))

        with ThreadPoolExecutor(3) as pool:
            list(pool.map(worker, range(3)))
        assert len(study._asktell._open) == 4  # this thread's and one per worker thread
        c.close()
        assert study._asktell._open == []
        # closing the client cancels its streams: the server ends them without an error
        assert metric(srv, 'tz_rpcs_total{code="INTERNAL",method="AskTell"}') == 0


def test_optimize_workers_end_their_streams():
    with tz_server.serve(metrics_port=0) as srv:
        c = tz_client.Client(srv.address)
        study = c.create_study("s", torch.zeros(3), [tz.m.SPSA(), tz.m.LR(1e-2)], seed=0)
        study.optimize(lambda x: float((x - 1).pow(2).sum()), n_evals=60, n_workers=3, progress=False, batch=2)
        assert study.info().evaluations == 60
        # each worker's stream was ended (it would otherwise hold a server thread until c.close());
        # the server learns of a cancelled stream asynchronously
        deadline = time.monotonic() + 10
        while srv.servicer.streams.open and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.servicer.streams.open == 0
        assert metric(srv, 'tz_rpcs_total{code="INTERNAL",method="AskTell"}') == 0
        assert len(c.conn._on_close) <= 1  # only the main study's channel, if it has a stream
        c.close()


def test_a_rejected_tell_ends_only_the_stream():
    with tz_server.serve() as srv:
        c = tz_client.Client(srv.address)
        study = c.create_study("s", torch.zeros(3), [tz.m.SPSA(), tz.m.LR(1e-2)], seed=0)
        t = study.ask()
        with pytest.raises(InvalidArgument, match="not finite"):
            study.tell(t, float("nan"))
        assert study._asktell._open == []
        assert study.info().evaluations == 0
        assert study.tell(t, 1.0) == (1, 0)  # a new stream
        assert study.tell(t, 1.0) == (0, 1)  # exactly once
        assert study.info().evaluations == 1
        c.close()


def test_servers_without_the_stream_are_served_by_unary_tell():
    backend = LocalBackend()
    servicer = Servicer(backend, Metrics())
    handlers = {}
    for name, (kind, req, rep) in METHODS.items():
        if name == "AskTell":
            continue  # an older server
        make = getattr(grpc, f"{kind}_rpc_method_handler")
        handlers[name] = make(getattr(servicer, name), request_deserializer=req[1], response_serializer=rep[0])
    server = grpc.server(ThreadPoolExecutor(8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        c = tz_client.Client(f"127.0.0.1:{port}")
        study = c.create_study("s", torch.zeros(3), [tz.m.SPSA(), tz.m.LR(1e-2)], seed=0)
        local = c.create_study("t", torch.zeros(3), [tz.m.SPSA(), tz.m.LR(1e-2)], seed=0)
        for _ in range(4):
            t = study.ask()
            assert study.tell(t, float(t.params.sum())) == (1, 0)
        assert study._asktell.streaming is False
        assert study.info().evaluations == 4
        assert local.info().evaluations == 0
        c.close()
    finally:
        server.stop(None)
        backend.close()


def test_stream_and_unary_calls_see_the_same_study():
    """A client on the stream and a raw unary Tell on the same study: trials and counts agree."""
    with tz_server.serve() as srv:
        c = tz_client.Client(srv.address)
        study = c.create_study("s", torch.zeros(2), [tz.m.SPSA(), tz.m.LR(1e-2)], seed=0)
        trials = study.ask(n=2)
        from tz_client._proto.torchzero_service.v1 import service_pb2 as pb
        from tz_client.codec import loss_to_proto
        rep = c.conn.stub.Tell(pb.TellRequest(session="s", items=[pb.TellItem(id=trials[0].id, loss=loss_to_proto(1.0))]))
        assert rep.accepted == 1
        assert study.tell(trials, [1.0, 2.0]) == (1, 1)
        assert study.info().evaluations == 2
        c.close()


class _Context:
    def __init__(self):
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


def test_stream_guard_bounds_streams_and_ends_idle_ones():
    from tz_server.stream_guard import StreamGuard
    guard = StreamGuard(limit=2, idle_timeout=0.2)
    a, b, c = _Context(), _Context(), _Context()
    ka, kb = guard.enter(a), guard.enter(b)
    assert ka is not None and kb is not None and guard.enter(c) is None  # full
    guard.busy(kb, True)  # answering a long request: never idle
    deadline = time.monotonic() + 5
    while not a.cancelled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert a.cancelled and not b.cancelled
    guard.leave(ka)
    assert guard.enter(c) is not None
    guard.stop()


def test_clients_beyond_the_stream_limit_use_unary_calls_and_idle_streams_reopen():
    with tz_server.serve(max_workers=2, stream_idle_timeout=0.3, metrics_port=0) as srv:  # one stream at most
        c1, c2 = tz_client.Client(srv.address), tz_client.Client(srv.address)
        s1 = c1.create_study("s", torch.zeros(3), [tz.m.SPSA(), tz.m.LR(1e-2)], seed=0)
        s2 = c2.open_study("s")
        t = s1.ask()
        assert s1.tell(t, 1.0) == (1, 0)
        assert srv.servicer.streams.open == 1
        t = s2.ask()  # refused a stream: served by unary calls
        assert s2.tell(t, 2.0) == (1, 0)
        assert s2._asktell._open == [] and s2._asktell._unary_until > 0
        time.sleep(1.0)  # s1's stream is ended for being idle, freeing its thread
        assert srv.servicer.streams.open == 0
        t = s1.ask()  # reopens a stream transparently
        assert s1.tell(t, 3.0) == (1, 0)
        assert s1.info().evaluations == 3
        c1.close()
        c2.close()
