"""Checks every incoming tensor against the session layout before it touches state."""
from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from tz_client._proto.torchzero_service.v1 import tensor_pb2 as tpb
from tz_client.codec import CodecError, parse_layout

from .errors import InvalidArgument

LayoutT = list[tuple[tuple[int, ...], torch.dtype]]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InvalidArgument(f"invalid session name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
                              "starting with a letter or digit")
    return name


def _fmt(shape: Sequence[int], dtype: torch.dtype) -> str:
    return f"{str(dtype).removeprefix('torch.')}{list(shape)}"


def check_layout(layout: tpb.Layout, expected: LayoutT, where: str) -> LayoutT:
    """The parsed ``layout``; raises InvalidArgument unless it matches ``expected`` exactly."""
    try:
        got = parse_layout(layout, where)
    except CodecError as e:
        raise InvalidArgument(str(e)) from None
    if len(got) != len(expected):
        raise InvalidArgument(f"{where}: expected {len(expected)} tensors, got {len(got)}")
    for i, ((s, d), (es, ed)) in enumerate(zip(got, expected)):
        if s != es or d != ed:
            raise InvalidArgument(f"{where}[{i}]: expected {_fmt(es, ed)}, got {_fmt(s, d)}")
    return got


def check_floating_point(dtypes: Sequence[torch.dtype], where: str = "params") -> None:
    """Parameters an optimizer can step are real floating point (not integer, bool or complex)."""
    for i, d in enumerate(dtypes):
        if not d.is_floating_point:
            raise InvalidArgument(f"{where}[{i}]: parameters must be floating point, got {d}")


def check_tensors(tensors: Sequence[torch.Tensor], expected: LayoutT, where: str, finite: bool = True) -> None:
    """Shapes and dtypes equal to ``expected``; with ``finite``, no inf or nan anywhere."""
    if len(tensors) != len(expected):
        raise InvalidArgument(f"{where}: expected {len(expected)} tensors, got {len(tensors)}")
    for i, (t, (es, ed)) in enumerate(zip(tensors, expected)):
        if tuple(t.shape) != es or t.dtype != ed:
            raise InvalidArgument(f"{where}[{i}]: expected {_fmt(es, ed)}, got {_fmt(t.shape, t.dtype)}")
    if finite:
        check_finite(tensors, where)


def check_finite(tensors: Sequence[torch.Tensor], where: str, indices: Sequence[int] | None = None) -> None:
    """No inf or nan in ``tensors``; errors name ``where[i]`` (``i`` from ``indices`` when given)."""
    for k, t in enumerate(tensors):
        if not (t.is_floating_point() or t.is_complex()) or t.numel() == 0:
            continue
        # a finite sum proves every entry finite (one cheap reduction); a non-finite sum may just be
        # an overflow, so look closer before rejecting
        if torch.isfinite(t.sum()).item():
            continue
        if not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            i = k if indices is None else indices[k]
            raise InvalidArgument(f"{where}[{i}]: {bad} non-finite value(s) (inf or nan)")


def check_loss(loss: object, where: str, finite: bool = True) -> None:
    if loss is None:
        raise InvalidArgument(f"{where}: a loss is required")
    if finite:
        v = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)  # type: ignore[arg-type]
        if v != v or v in (float("inf"), float("-inf")):
            raise InvalidArgument(f"{where}: loss is not finite ({v})")
