"""How to build each registered module for the invariance matrix (tests/test_invariance.py).

A module with no entry is built as ``[Module(), tz.m.LR(1e-2)]``. Add a :class:`ModuleCase` for a
module that needs arguments, a closure, or a particular chain. ``ABSTRACT`` names base classes
that are exercised through their subclasses.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torchzero as tz


@dataclass
class ModuleCase:
    build: Callable[[], list]
    needs_closure: bool = False
    """the module cannot step without a closure (the matrix checks that it says so clearly)."""
    steps: int = 4
    skip: dict[str, str] = field(default_factory=dict)
    """invariance check name -> reason it does not apply to this module."""


CASES: dict[str, ModuleCase] = {
    "LR": ModuleCase(lambda: [tz.m.LR(1e-2)]),
    "StepSize": ModuleCase(lambda: [tz.m.StepSize(1e-2)]),
    "Adam": ModuleCase(lambda: [tz.m.Adam(amsgrad=True), tz.m.LR(1e-2)]),
}

ABSTRACT: dict[str, str] = {}
