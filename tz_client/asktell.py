"""Ask/tell over one long-lived bidirectional stream (the ``AskTell`` RPC), one per thread.

A unary RPC pays for setting up and tearing down a call every time; on a stream each tell / ask
is one message each way, which is the cheaper round trip in gRPC's Python runtime (about 0.6x of
a unary call over loopback here). Requests are answered in order, so a thread with its own stream
simply writes a request and reads the next reply. Servers without ``AskTell`` (UNIMPLEMENTED) are
served by the unary ``Tell`` instead, and so are calls made while the server's streams are all
in use (``tz-server`` bounds them so that they never hold every RPC thread).

An open stream holds one of the server's RPC threads (``tz-server --max-workers``) until it is
closed: :meth:`AskTellChannel.close` (called when the client closes, and by ``Study.optimize`` for
its worker threads) ends them.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc

from ._proto.torchzero_service.v1 import service_pb2 as pb
from .channel import Connection
from .wire import STREAMS_FULL

UNARY_BACKOFF = 5.0
"""Seconds of unary calls after the server said its ask/tell streams are all in use."""


class _Stream:
    def __init__(self, conn: Connection, metadata: Any):
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self.call = conn.stub.AskTell(self._requests(), metadata=metadata)
        self.replies = iter(self.call)

    def _requests(self) -> Iterator[pb.TellRequest]:
        while True:
            m = self.outbox.get()
            if m is None:
                return
            yield m

    def close(self) -> None:
        self.outbox.put(None)
        self.call.cancel()


class StreamEnded(grpc.RpcError):
    """The server closed the stream without answering (treated as UNAVAILABLE: retry)."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "the ask/tell stream ended"


class AskTellChannel:
    """Sends :class:`TellRequest` messages and returns their replies, over a stream per thread."""

    def __init__(self, conn: Connection, metadata: Any):
        self.conn = conn
        self.metadata = metadata
        self.streaming = True
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[_Stream] = []
        self._registered = False
        self._unary_until = 0.0

    def roundtrip(self, request: pb.TellRequest) -> pb.TellReply:
        """One request, one reply; raises ``grpc.RpcError`` (the stream is then dropped).

        A stream the server ended for being idle is reopened once; while the server's streams are
        all in use, unary calls are made instead (the stream is tried again after a while)."""
        if not self.streaming or time.monotonic() < self._unary_until:
            return self.conn.stub.Tell(request, metadata=self.metadata)
        try:
            return self._on_stream(request)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED:  # ended by the server while idle
                if request.HasField("then_ask"):
                    request.then_ask.resume = True  # in case a reply was lost in the race
                return self._on_stream(request)
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and STREAMS_FULL in (e.details() or ""):
                self._unary_until = time.monotonic() + UNARY_BACKOFF
                return self.conn.stub.Tell(request, metadata=self.metadata)
            raise

    def _on_stream(self, request: pb.TellRequest) -> pb.TellReply:
        stream = getattr(self._local, "stream", None)
        if stream is None:
            stream = self._local.stream = _Stream(self.conn, self.metadata)
            with self._lock:
                self._open.append(stream)
                if not self._registered:  # the connection ends open streams when it closes
                    self.conn.on_close(self.close)
                    self._registered = True
        stream.outbox.put(request)
        try:
            return next(stream.replies)
        except StopIteration:
            self._drop(stream)
            raise StreamEnded() from None
        except grpc.RpcError as e:
            self._drop(stream)
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:  # an older server
                self.streaming = False
                return self.conn.stub.Tell(request, metadata=self.metadata)
            raise

    def _drop(self, stream: _Stream) -> None:
        self._local.stream = None
        stream.close()
        with self._lock:
            if stream in self._open:
                self._open.remove(stream)

    def close(self) -> None:
        """Ends every stream (of every thread); a later call opens a new one."""
        with self._lock:
            streams, self._open = self._open, []
            if self._registered:
                self.conn.forget_on_close(self.close)
                self._registered = False
        for s in streams:
            s.close()
        self._local = threading.local()
