"""gRPC plumbing shared by client and server: method table, fast chunk framing, channel options.

Stream messages that only carry a ``chunk`` (raw tensor bytes) are framed by hand: the bytes of a
protobuf message whose only field is ``chunk`` are ``tag, varint(length), data``, so a chunk is
encoded with one copy and decoded as a zero-copy memoryview. The wire format is plain protobuf;
other implementations can use the generated code unchanged.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from ._proto.torchzero_service.v1 import service_pb2 as pb

SERVICE = "torchzero_service.v1.TorchZero"
MAX_MESSAGE_BYTES = 64 << 20
"""Upper bound on one gRPC message, both ways (tensor payloads are chunked well below it)."""

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
"""Client channel options: bounded messages, keepalive pings every 30 s (detects dead servers)."""

STREAMS_FULL = "all ask/tell streams of this server are in use"
"""Status details of an AskTell call refused because the server's stream limit is reached (the
client uses unary calls meanwhile)."""

SERVER_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 20_000),
    ("grpc.http2.max_ping_strikes", 0),
]
"""Server options: bounded messages; the clients' keepalive pings are welcome."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _make_codec(cls: type, chunk_field: int) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    tag = bytes([(chunk_field << 3) | 2])

    def serialize(msg: Any) -> bytes:
        if isinstance(msg, (list, tuple)):  # a chunk: memoryview pieces
            n = sum(len(p) for p in msg)
            return b"".join([tag, _varint(n), *msg])
        if isinstance(msg, (bytes, bytearray, memoryview)):
            return b"".join([tag, _varint(len(msg)), msg])
        return msg.SerializeToString()

    def deserialize(data: bytes) -> Any:
        if data[:1] == tag:
            n, shift, i = 0, 0, 1
            while i < len(data) and i < 11:
                b = data[i]
                n |= (b & 0x7F) << shift
                i += 1
                if not b & 0x80:
                    break
                shift += 7
            if i + n == len(data):
                return memoryview(data)[i:]
        return cls.FromString(data)

    return serialize, deserialize


# (request serializer, request deserializer), (response serializer, response deserializer)
CREATE_REQ = _make_codec(pb.CreateRequest, 2)
STEP_REQ = _make_codec(pb.StepRequest, 3)
STEP_REP = _make_codec(pb.StepReply, 3)


def is_chunk(msg: Any) -> bool:
    return isinstance(msg, memoryview)


def _unary(cls: type) -> tuple[Callable, Callable]:
    return cls.SerializeToString, cls.FromString


# name -> (kind, (req_ser, req_deser), (rep_ser, rep_deser))
METHODS: dict[str, tuple[str, tuple[Callable, Callable], tuple[Callable, Callable]]] = {
    "CreateSession": ("stream_unary", CREATE_REQ, _unary(pb.SessionInfo)),
    "GetSession": ("unary_unary", _unary(pb.SessionRef), _unary(pb.SessionInfo)),
    "ListSessions": ("unary_unary", _unary(pb.ListRequest), _unary(pb.ListReply)),
    "DeleteSession": ("unary_unary", _unary(pb.SessionRef), _unary(pb.DeleteReply)),
    "Ask": ("unary_unary", _unary(pb.AskRequest), _unary(pb.AskReply)),
    "Tell": ("unary_unary", _unary(pb.TellRequest), _unary(pb.TellReply)),
    "Best": ("unary_unary", _unary(pb.SessionRef), _unary(pb.BestReply)),
    "AskTell": ("stream_stream", _unary(pb.TellRequest), _unary(pb.TellReply)),
    "Step": ("stream_stream", STEP_REQ, STEP_REP),
    "Pull": ("unary_stream", _unary(pb.SessionRef), STEP_REP),
}


class Stub:
    """Callables for every method of the service, using the fast chunk framing."""

    def __init__(self, channel: grpc.Channel):
        for name, (kind, req, rep) in METHODS.items():
            factory = getattr(channel, kind)
            setattr(self, name, factory(f"/{SERVICE}/{name}", request_serializer=req[0], response_deserializer=rep[1]))


def server_handler(servicer: Any) -> grpc.GenericRpcHandler:
    """A generic handler routing every method to ``servicer.<Name>(request, context)``."""
    handlers = {}
    for name, (kind, req, rep) in METHODS.items():
        make = getattr(grpc, f"{kind}_rpc_method_handler")
        handlers[name] = make(getattr(servicer, name), request_deserializer=req[1], response_serializer=rep[0])
    return grpc.method_handlers_generic_handler(SERVICE, handlers)
