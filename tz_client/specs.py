"""Module specs (``torchzero.to_spec`` dicts) as structured protobuf messages, and back.

JSON-like values map onto :class:`Value` (integers stay integers, unlike ``google.protobuf.Struct``).
Nothing here instantiates anything: the server rebuilds modules with ``torchzero.from_spec``,
which only knows registered classes.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torchzero as tz

from ._proto.torchzero_service.v1 import spec_pb2 as spb

MAX_DEPTH = 64


def to_value(v: Any, depth: int = 0) -> spb.Value:
    if depth > MAX_DEPTH:
        raise ValueError("spec nested too deeply")
    if v is None:
        return spb.Value(null=True)
    if isinstance(v, bool):
        return spb.Value(boolean=v)
    if isinstance(v, int):
        if not -(1 << 63) <= v < (1 << 63):
            raise ValueError(f"integer {v} does not fit in 64 bits")
        return spb.Value(integer=v)
    if isinstance(v, float):
        return spb.Value(number=v)
    if isinstance(v, str):
        return spb.Value(text=v)
    if isinstance(v, (list, tuple)):
        return spb.Value(list=spb.ValueList(items=[to_value(x, depth + 1) for x in v]))
    if isinstance(v, dict):
        return spb.Value(map=to_map(v, depth + 1))
    raise TypeError(f"cannot send a {type(v).__name__} in a spec")


def to_map(d: dict[str, Any], depth: int = 0) -> spb.ValueMap:
    m = spb.ValueMap()
    for k, x in d.items():
        if not isinstance(k, str):
            raise TypeError("spec dict keys must be strings")
        m.fields[k].CopyFrom(to_value(x, depth + 1))
    return m


def from_value(v: spb.Value, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise ValueError("spec nested too deeply")
    kind = v.WhichOneof("kind")
    if kind is None or kind == "null":
        return None
    if kind == "list":
        return [from_value(x, depth + 1) for x in v.list.items]
    if kind == "map":
        return from_map(v.map, depth + 1)
    return getattr(v, kind)


def from_map(m: spb.ValueMap, depth: int = 0) -> dict[str, Any]:
    return {k: from_value(x, depth + 1) for k, x in m.fields.items()}


def module_to_proto(spec: dict[str, Any]) -> spb.ModuleSpec:
    return spb.ModuleSpec(module=spec["module"], args=spb.ValueList(items=[to_value(a) for a in spec.get("args", [])]),
                          kwargs=to_map(spec.get("kwargs", {})))


def module_from_proto(msg: spb.ModuleSpec) -> dict[str, Any]:
    return {"module": msg.module, "args": [from_value(a) for a in msg.args.items], "kwargs": from_map(msg.kwargs)}


def modules_to_proto(modules: Sequence[Any]) -> list[spb.ModuleSpec]:
    """Specs of torchzero module objects (or of spec dicts), in order."""
    out = []
    for m in modules:
        spec = m if isinstance(m, dict) else tz.to_spec(m)
        out.append(module_to_proto(spec))
    return out
