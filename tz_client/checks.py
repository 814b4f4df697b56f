"""Checks of the arguments of client calls, made before anything is sent (ValueError on bad ones)."""
from __future__ import annotations

import operator
from typing import Any


def integer(value: Any, what: str, minimum: int | None = None) -> int:
    """``value`` as an int (Python or numpy integers; not bools, floats or strings), at least
    ``minimum`` when given; ``what`` names it in the error."""
    try:
        k = operator.index(value)
    except TypeError:
        k = None
    if k is None or isinstance(value, bool) or (minimum is not None and k < minimum):
        need = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise ValueError(f"{what} must be {need}, got {value!r}")
    return k


def seconds(value: Any, what: str) -> float:
    """``value`` as a number of seconds >= 0 (not nan)."""
    try:
        s = float(value)
    except (TypeError, ValueError):
        s = float("nan")
    if isinstance(value, bool) or not s >= 0:
        raise ValueError(f"{what} must be a number of seconds >= 0, got {value!r}")
    return s
