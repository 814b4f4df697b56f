"""Tensors and losses on the wire: dtype + shape + raw bytes, chunked for large payloads.

A *payload* is a list of tensors sent as a :class:`Layout` header followed by chunks holding the
concatenation of their raw bytes (C order, native little-endian). :func:`iter_chunks` cuts tensors
into chunks without copying them (a chunk is a list of memoryview pieces, joined once when the
message is encoded); :class:`PayloadReader` writes incoming chunks straight into preallocated
tensors.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ._proto.torchzero_service.v1 import tensor_pb2 as tpb

CHUNK_BYTES = 4 << 20
"""Bytes of tensor data per stream message."""

DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
    "complex64": torch.complex64, "complex128": torch.complex128,
    "int64": torch.int64, "int32": torch.int32, "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8,
    "bool": torch.bool,
}
DTYPE_NAMES: dict[torch.dtype, str] = {v: k for k, v in DTYPES.items()}


class CodecError(ValueError):
    """Malformed tensor data (unknown dtype, size mismatch...)."""


def dtype_name(dtype: torch.dtype) -> str:
    try:
        return DTYPE_NAMES[dtype]
    except KeyError:
        raise CodecError(f"dtype {dtype} cannot be sent (supported: {', '.join(DTYPES)})") from None


def parse_dtype(name: str, where: str = "tensor") -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise CodecError(f"{where}: unknown dtype {name!r} (supported: {', '.join(DTYPES)})") from None


def parse_shape(shape: Sequence[int], where: str = "tensor") -> tuple[int, ...]:
    out = tuple(shape)
    if len(out) > 32 or (out and min(out) < 0):
        raise CodecError(f"{where}: invalid shape {list(shape)}")
    return out


def nbytes(dtype: torch.dtype, shape: Sequence[int]) -> int:
    return math.prod(shape) * dtype.itemsize


def _u8(t: torch.Tensor) -> np.ndarray:
    """The raw bytes of a CPU tensor as a flat uint8 array (no copy when contiguous)."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    return t.contiguous().reshape(-1).view(torch.uint8).numpy()


def raw_bytes(t: torch.Tensor) -> memoryview:
    return memoryview(_u8(t))


# -- layouts ------------------------------------------------------------------------------------
def meta_of(t: torch.Tensor) -> tpb.TensorMeta:
    return tpb.TensorMeta(dtype=dtype_name(t.dtype), shape=list(t.shape))


def layout_of(tensors: Sequence[torch.Tensor]) -> tpb.Layout:
    return tpb.Layout(tensors=[meta_of(t) for t in tensors])


def parse_layout(layout: tpb.Layout, where: str = "layout") -> list[tuple[tuple[int, ...], torch.dtype]]:
    return [(parse_shape(m.shape, f"{where}[{i}]"), parse_dtype(m.dtype, f"{where}[{i}]"))
            for i, m in enumerate(layout.tensors)]


def empty_like_layout(layout: Sequence[tuple[tuple[int, ...], torch.dtype]], device: Any = "cpu") -> list[torch.Tensor]:
    return [torch.empty(shape, dtype=dtype, device=device) for shape, dtype in layout]


# -- inline tensors -----------------------------------------------------------------------------
_NUMPY_OK = {torch.float64, torch.float32, torch.float16, torch.complex64, torch.complex128, torch.int64,
             torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool}


def _cpu_bytes(t: torch.Tensor) -> bytes:
    """A copy of the raw bytes of ``t`` (moved to the CPU first if needed)."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    return t.numpy().tobytes() if t.dtype in _NUMPY_OK else _u8(t).tobytes()


def to_proto(t: torch.Tensor) -> tpb.Tensor:
    """A tensor with its bytes inline (for small tensors)."""
    return tpb.Tensor(dtype=dtype_name(t.dtype), shape=t.shape, data=_cpu_bytes(t))


def from_proto(msg: tpb.Tensor, where: str = "tensor", device: Any = None) -> torch.Tensor:
    dtype = parse_dtype(msg.dtype, where)
    shape = parse_shape(msg.shape, where)
    data = msg.data
    expected = nbytes(dtype, shape)
    if len(data) != expected:
        raise CodecError(f"{where}: {len(data)} bytes of data for a {msg.dtype} tensor of shape {list(shape)} "
                         f"(expected {expected})")
    t = torch.frombuffer(bytearray(data), dtype=dtype).view(shape) if expected else torch.empty(shape, dtype=dtype)
    return t if device is None else t.to(device)


def rows_to_protos(stacked: torch.Tensor) -> list[tpb.Tensor]:
    """One message per row of ``stacked`` (shape ``[n, *shape]``), all cut from one copy of its
    bytes: many small tensors of one dtype and shape (the points of a batch) for the price of one."""
    name, shape, n = dtype_name(stacked.dtype), stacked.shape[1:], stacked.shape[0]
    data = _cpu_bytes(stacked)
    k = len(data) // n if n else 0
    return [tpb.Tensor(dtype=name, shape=shape, data=data[i * k:(i + 1) * k]) for i in range(n)]


def rows_from_protos(msgs: Sequence[tpb.Tensor], where: Sequence[str], device: Any = None) -> list[torch.Tensor]:
    """Decodes many messages (``where[i]`` names message ``i`` in errors); when they share one
    dtype and shape, with one copy of their bytes, as the rows of one new tensor."""
    if not msgs:
        return []
    first = msgs[0]
    if len(msgs) == 1 or any(m.dtype != first.dtype or m.shape != first.shape for m in msgs):
        return [from_proto(m, w, device) for m, w in zip(msgs, where)]
    dtype = parse_dtype(first.dtype, where[0])
    shape = parse_shape(first.shape, where[0])
    expected = nbytes(dtype, shape)
    for m, w in zip(msgs, where):
        if len(m.data) != expected:
            from_proto(m, w)  # raises the size error, naming the message
    if not expected:
        return [torch.empty(shape, dtype=dtype, device=device) for _ in msgs]
    t = torch.frombuffer(bytearray(b"".join(m.data for m in msgs)), dtype=dtype).view(len(msgs), *shape)
    if device is not None:
        t = t.to(device)
    return list(t.unbind(0))


# -- losses -------------------------------------------------------------------------------------
def loss_to_proto(loss: Any) -> tpb.Loss:
    """A loss as sent: a Python / numpy number, or a one-element tensor (kept bit for bit)."""
    msg = tpb.Loss()
    write_loss(msg, loss)
    return msg


def write_loss(msg: tpb.Loss, loss: Any) -> None:
    """Writes ``loss`` into the (sub)message ``msg`` in place, as :func:`loss_to_proto` encodes it
    (cheaper than building a message and copying it into its parent)."""
    if isinstance(loss, torch.Tensor):
        if loss.numel() != 1:
            raise ValueError(f"a loss must be a scalar, got a tensor of shape {list(loss.shape)}")
        msg.tensor.CopyFrom(to_proto(loss.detach()))
    elif isinstance(loss, (bool, np.bool_)) or not isinstance(loss, (int, float, np.number)):
        raise TypeError(f"a loss must be a number or a scalar tensor, got {type(loss).__name__}")
    else:
        msg.number = float(loss)


def loss_from_proto(msg: tpb.Loss, where: str = "loss", device: Any = None) -> Any:
    kind = msg.WhichOneof("value")
    if kind == "number":
        return msg.number
    if kind == "tensor":
        t = from_proto(msg.tensor, where, device)
        if t.numel() != 1:
            raise CodecError(f"{where}: a loss must be a scalar, got shape {list(t.shape)}")
        return t
    return None


def loss_to_float(loss: Any) -> float:
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)


# -- chunked payloads ---------------------------------------------------------------------------
Chunk = list  # a list of memoryview pieces, sent as one message


def iter_chunks(tensors: Sequence[torch.Tensor], chunk_bytes: int = CHUNK_BYTES, start: int = 0,
                end: int | None = None) -> Iterator[Chunk]:
    """Cuts the raw bytes of ``tensors`` (bytes ``start:end`` of their concatenation) into chunks of
    at most ``chunk_bytes`` (no copy)."""
    pieces: list[memoryview] = []
    size = 0
    offset = 0  # of the current tensor in the concatenation
    for t in tensors:
        mv = raw_bytes(t)
        n = len(mv)
        pos = max(start - offset, 0)
        stop = n if end is None else min(n, end - offset)
        offset += n
        while pos < stop:
            take = min(stop - pos, chunk_bytes - size)
            pieces.append(mv[pos:pos + take])
            size += take
            pos += take
            if size == chunk_bytes:
                yield pieces
                pieces, size = [], 0
        if end is not None and offset >= end:
            break
    if pieces:
        yield pieces


class PayloadReader:
    """Writes the chunks of a payload into ``targets`` (contiguous CPU tensors), in order."""

    def __init__(self, targets: Sequence[torch.Tensor], where: str = "payload"):
        self.where = where
        self.views = [_u8(t) for t in targets]
        for t in targets:
            if t.device.type != "cpu" or not t.is_contiguous():
                raise ValueError("PayloadReader targets must be contiguous CPU tensors")
        self.total = sum(len(v) for v in self.views)
        self.received = 0
        self._i = 0
        self._pos = 0
        while self._i < len(self.views) and len(self.views[self._i]) == 0:
            self._i += 1

    @property
    def done(self) -> bool:
        return self.received == self.total

    def feed(self, data: Any) -> None:
        src = np.frombuffer(data, dtype=np.uint8)
        n = len(src)
        if self.received + n > self.total:
            raise CodecError(f"{self.where}: more data than the layout announced ({self.received + n} > {self.total} bytes)")
        off = 0
        while off < n:
            view = self.views[self._i]
            take = min(n - off, len(view) - self._pos)
            view[self._pos:self._pos + take] = src[off:off + take]
            off += take
            self._pos += take
            if self._pos == len(view):
                self._i += 1
                self._pos = 0
                while self._i < len(self.views) and len(self.views[self._i]) == 0:
                    self._i += 1
        self.received += n
