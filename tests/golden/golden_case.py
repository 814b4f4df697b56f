"""The record type of golden case files."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GoldenCase:
    name: str
    build: str
    problem: str = "rosenbrock"
    steps: int = 30
    closure: bool = True
    rtol: float = 1e-7
    atol: float = 1e-9
    compare_losses: bool = True
    """False where the reference returns a different quantity from ``step`` (e.g. residual vectors)."""
