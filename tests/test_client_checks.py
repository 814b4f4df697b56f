"""Argument checks of client calls (tz_client.checks)."""
from __future__ import annotations

import numpy as np
import pytest

from tz_client.checks import integer, seconds


def test_integer_accepts_python_and_numpy_integers():
    assert integer(3, "n") == 3 and type(integer(np.int64(3), "n")) is int
    assert integer(0, "n", 0) == 0 and integer(-7, "seed") == -7


@pytest.mark.parametrize("bad", [True, 2.0, 2.5, "3", None, np.float32(1)])
def test_integer_refuses_what_is_not_an_integer(bad):
    with pytest.raises(ValueError, match=r"n must be an integer, got"):
        integer(bad, "n")


def test_integer_minimum_is_named():
    with pytest.raises(ValueError, match=r"ask: n must be an integer >= 1, got 0"):
        integer(0, "ask: n", 1)


def test_seconds():
    assert seconds(0, "wait") == 0.0 and seconds(2.5, "wait") == 2.5 and seconds(np.float64(1), "wait") == 1.0
    for bad in (-1, float("nan"), "x", None, True):
        with pytest.raises(ValueError, match="wait must be a number of seconds >= 0"):
            seconds(bad, "wait")
