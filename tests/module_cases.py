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
    # -- grad_approximation / zeroth_order (issue 3) --
    "FDM": ModuleCase(lambda: [tz.m.FDM(), tz.m.LR(1e-2)], needs_closure=True),
    "RandomizedFDM": ModuleCase(lambda: [tz.m.RandomizedFDM(n_samples=2, seed=1), tz.m.LR(1e-2)], needs_closure=True),
    "SPSA": ModuleCase(lambda: [tz.m.SPSA(h=1e-2), tz.m.LR(1e-2)], needs_closure=True),
    "SPSA1": ModuleCase(lambda: [tz.m.SPSA1(h=0.1, n_samples=2, seed=3), tz.m.LR(1e-5)], needs_closure=True),
    "RDSA": ModuleCase(lambda: [tz.m.RDSA(h=1e-2, target="grad"), tz.m.LR(1e-2)], needs_closure=True),
    "GaussianSmoothing": ModuleCase(lambda: [tz.m.GaussianSmoothing(n_samples=4, seed=0), tz.m.LR(1e-2)], needs_closure=True),
    "MeZO": ModuleCase(lambda: [tz.m.MeZO(h=1e-2, target="update"), tz.m.LR(1e-2)], needs_closure=True),
    "ForwardGradient": ModuleCase(lambda: [tz.m.ForwardGradient(n_samples=2), tz.m.LR(1e-2)], needs_closure=True),
}

ABSTRACT: dict[str, str] = {
    "GradApproximator": "abstract base of the gradient approximators (issue 3)",
}
