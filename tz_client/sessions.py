"""Creating sessions (streaming the initial parameters) and describing them."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from . import specs
from ._proto.torchzero_service.v1 import service_pb2 as pb
from .codec import PayloadReader, iter_chunks, layout_of, loss_from_proto, parse_layout
from .channel import Connection
from .wire import is_chunk

KIND_NAMES = {pb.STUDY: "study", pb.OPTIMIZER: "optimizer"}

SESSION_TOKEN_KEY = "tz-session-token"
"""Call metadata carrying a session's own token (the server's token goes in ``authorization``)."""


@dataclass
class SessionInfo:
    """A hosted session as the server describes it."""

    name: str
    kind: str
    shapes: list[tuple[int, ...]]
    dtypes: list[torch.dtype]
    step: int
    evaluations: int
    device: str
    workers: int
    state: str
    best_loss: float | None
    modules: list[dict[str, Any]]
    user_attrs: dict[str, Any]
    created: bool = False
    protected: bool = False
    """The session has its own token (without it, only ``name`` and ``kind`` are filled in)."""
    pipelined: bool = False
    """Gradient pushes are stepped piece by piece as they arrive (``RemoteOptimizer(pipelined=True)``)."""
    persist_error: str = ""
    """Why the server's last write of the session's checkpoint or journal failed (a full disk...);
    the session goes on in memory and the server retries. Empty while writes work."""

    @classmethod
    def from_proto(cls, m: pb.SessionInfo) -> "SessionInfo":
        layout = parse_layout(m.params)
        return cls(name=m.name, kind=KIND_NAMES.get(m.kind, "unknown"), shapes=[s for s, _ in layout],
                   dtypes=[d for _, d in layout], step=m.step, evaluations=m.evaluations, device=m.device,
                   workers=m.workers, state=m.state, best_loss=m.best_loss if m.HasField("best_loss") else None,
                   modules=[specs.module_from_proto(x) for x in m.modules], user_attrs=specs.from_map(m.user_attrs),
                   created=m.created, protected=m.protected, pipelined=m.pipelined, persist_error=m.persist_error)


def session_metadata(conn: Connection, session_token: str | None) -> tuple[tuple[str, str], ...]:
    """Call metadata for one session: the server's token and the session's own token, if any."""
    return conn.metadata + ((SESSION_TOKEN_KEY, session_token),) if session_token else conn.metadata


def create_session(conn: Connection, header: pb.CreateHeader, params: Sequence[torch.Tensor],
                   metadata: tuple[tuple[str, str], ...] | None = None) -> pb.SessionInfo:
    """Sends ``header`` and the parameters' bytes; safe to retry (with ``exist_ok`` semantics kept)."""
    header.params.CopyFrom(layout_of(params))
    cpu = [p.detach().cpu() for p in params]

    def requests() -> Iterator[Any]:
        yield pb.CreateRequest(header=header)
        yield from iter_chunks(cpu)

    md = conn.metadata if metadata is None else metadata
    return conn.call(lambda: conn.stub.CreateSession(requests(), metadata=md))


def read_params_into(responses: Iterator[Any], done: pb.StepDone, targets: Sequence[torch.Tensor]) -> None:
    """Reads the parameter chunks that follow ``done`` into ``targets`` (any device / layout)."""
    layout = parse_layout(done.params)
    expected = [(tuple(t.shape), t.dtype) for t in targets]
    if layout != expected:
        raise RuntimeError(f"the server sent parameters {layout}, expected {expected}")
    direct = [t.device.type == "cpu" and t.is_contiguous() for t in targets]
    bufs = [t.detach() if ok else torch.empty(t.shape, dtype=t.dtype) for t, ok in zip(targets, direct)]
    reader = PayloadReader(bufs, "params")
    while not reader.done:
        msg = next(responses)
        if not is_chunk(msg):
            raise RuntimeError("protocol error: expected parameter data")
        reader.feed(msg)
    with torch.no_grad():
        for t, b, ok in zip(targets, bufs, direct):
            if not ok:
                t.copy_(b)


def pull(conn: Connection, name: str, targets: Sequence[torch.Tensor],
         metadata: tuple[tuple[str, str], ...] | None = None) -> int:
    """Copies the session's current parameters into ``targets``; returns its step count."""
    md = conn.metadata if metadata is None else metadata

    def once() -> int:
        responses = iter(conn.stub.Pull(pb.SessionRef(name=name), metadata=md))
        first = next(responses)
        read_params_into(responses, first.done, targets)
        return first.done.step
    return conn.call(once)


def decode_loss(msg: pb.StepDone) -> Any:
    return loss_from_proto(msg.loss) if msg.HasField("loss") else None
