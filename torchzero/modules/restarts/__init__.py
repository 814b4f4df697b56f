"""Restart strategies: clear the state of other modules (typically conjugate gradient or
quasi-Newton methods) when a condition on the iterates says that it has gone stale."""
from .restarts import BirginMartinezRestart, PowellRestart, RestartEvery, RestartOnStuck, RestartStrategyBase

__all__ = ["RestartStrategyBase", "RestartEvery", "RestartOnStuck", "PowellRestart", "BirginMartinezRestart"]
