"""Reading and writing chunked tensor payloads inside gRPC streams (server side)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from tz_client.codec import CodecError, PayloadReader, iter_chunks
from tz_client.wire import is_chunk

from .errors import Aborted, InvalidArgument

LayoutT = list[tuple[tuple[int, ...], torch.dtype]]


def read_payload(it: Iterator[Any], layout: LayoutT, where: str, out: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Reads chunk messages from ``it`` into ``out`` (or new CPU tensors) shaped by ``layout``."""
    if out is None:
        out = [torch.empty(shape, dtype=dtype) for shape, dtype in layout]
    for _ in feed_payload(it, PayloadReader(out, where), where):
        pass
    return out


def feed_payload(it: Iterator[Any], reader: PayloadReader, where: str) -> Iterator[int]:
    """Feeds chunk messages from ``it`` into ``reader`` until the payload is complete, yielding the
    bytes received so far after each chunk."""
    while not reader.done:
        try:
            msg = next(it)
        except StopIteration:
            raise Aborted(f"{where}: stream ended after {reader.received} of {reader.total} bytes") from None
        if not is_chunk(msg):
            raise InvalidArgument(f"{where}: expected tensor data, got a {msg.WhichOneof('msg')} message")
        try:
            reader.feed(msg)
        except CodecError as e:
            raise InvalidArgument(str(e)) from None
        yield reader.received


def to_device(tensors: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    if device.type == "cpu":
        return tensors
    return [t.to(device) for t in tensors]


def payload_chunks(tensors: list[torch.Tensor]) -> Iterator[Any]:
    """Chunks (lists of memoryviews) of ``tensors``' bytes; device tensors are copied to the CPU once."""
    cpu = [t.detach().cpu() if t.device.type != "cpu" else t.detach() for t in tensors]
    return iter_chunks(cpu)
