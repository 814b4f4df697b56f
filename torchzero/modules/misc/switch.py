"""Switching between modules over the course of a run."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from ...core.module import Module
from ...core.objective import Objective


class Alternate(Module):
    """Steps with one of ``modules`` at a time, in turn: ``steps[0]`` steps with the first, then
    ``steps[1]`` with the second, and so on, starting over after the last.

    Args:
        *modules: the modules (a list is chained).
        steps: steps per module (one number for all, or one per module).
    """

    LOOP = True

    def __init__(self, *modules: Module | Sequence[Module], steps: int | Iterable[int] = 1):
        if not modules:
            raise ValueError(f"{type(self).__name__} needs at least one module")
        super().__init__()
        self.set_children_sequence(modules)
        self._steps = self._steps_per_module(len(modules), steps)

    def _steps_per_module(self, n: int, steps: int | Iterable[int]) -> list[int]:
        if isinstance(steps, int):
            out = [steps] * n
        else:
            out = [int(s) for s in steps]
            if len(out) != n:
                raise ValueError(f"steps must have one entry per module ({n}), got {len(out)}")
        if any(s < 1 for s in out):
            raise ValueError(f"steps must be >= 1, got {out}")
        return out

    def apply(self, objective: Objective) -> Objective:
        n = len(self._steps)
        idx = self.global_state.get("current", 0)
        done = self.global_state.get("steps_done", 0)
        objective = self.inner_step(f"module_{idx}", objective)
        done += 1
        if done >= self._steps[idx] and (self.LOOP or idx < n - 1):
            idx = (idx + 1) % n
            done = 0
        self.global_state["current"] = idx
        self.global_state["steps_done"] = done
        return objective


class Switch(Alternate):
    """Steps with the first module for ``steps[0]`` steps, then with the second for ``steps[1]``
    steps, and so on; the last module is used from then on.

    Args:
        *modules: the modules (a list is chained).
        steps: steps per module before switching to the next (one number for all, or one per
            module except the last).
    """

    LOOP = False

    def __init__(self, *modules: Module | Sequence[Module], steps: int | Iterable[int]):
        super().__init__(*modules, steps=steps)

    def _steps_per_module(self, n: int, steps: int | Iterable[int]) -> list[int]:
        if isinstance(steps, int):
            out = [steps] * n
        else:
            out = [int(s) for s in steps]
            if len(out) != n - 1:
                raise ValueError(f"steps must have one entry per module except the last ({n - 1}), got {len(out)}")
            out.append(1)
        if any(s < 1 for s in out):
            raise ValueError(f"steps must be >= 1, got {out}")
        return out
