"""Helpers for ``torch._foreach_*`` math with per-parameter scalars.

Settings come as per-parameter lists; when every parameter shares the value (the usual case) the
foreach kernels get one Python scalar, otherwise a scalar list.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def scalar_or_list(values: Sequence[Any]) -> Any:
    """The single value if all entries are equal, else the list (for foreach scalar arguments)."""
    first = values[0]
    for v in values:
        if v != first:
            return list(values)
    return first


def is_list(x: Any) -> bool:
    return isinstance(x, list)


def map_scalar(fn, x: Any) -> Any:
    """Applies ``fn`` to a scalar or to each entry of a scalar list."""
    return [fn(v) for v in x] if isinstance(x, list) else fn(x)
