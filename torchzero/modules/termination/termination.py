"""Termination criteria: modules that tell the optimizer a run should stop.

A criterion never changes the update. At each step it checks its condition and sets
``objective.should_terminate``; after the step the optimizer copies it to
``Optimizer.should_terminate``, so a run can be written as::

    opt = tz.Optimizer(params, tz.m.Adam(), tz.m.LR(1e-2), tz.m.TerminateByGradientNorm(1e-6))
    while not opt.should_terminate:
        opt.step(closure)

The flag is re-evaluated at every step (it is False again if the condition stops holding), it is
part of ``opt.state_dict()`` and several criteria in one chain act as :class:`TerminateAny`.
"""
from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from typing import Any, Literal

import torch

from ...core.module import Module
from ...core.objective import Objective
from ..misc._metrics import check_ord, global_metric
from ..misc.misc import loss_for

Metric = Literal["mad", "std", "var", "sum", "l0", "l1", "l2", "l3", "l4", "linf"] | float | torch.Tensor


class TerminationCriteriaBase(Module, ABC):
    """Base class of termination criteria.

    Subclasses implement :meth:`termination_criteria`, which checks the condition once per step.
    The run should stop when it has held at ``n`` consecutive steps.

    Args:
        defaults: default settings.
        n: number of consecutive steps the condition must hold.
    """

    def __init__(self, defaults: dict | None = None, n: int = 1):
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        super().__init__(defaults)
        self._n = int(n)

    @abstractmethod
    def termination_criteria(self, objective: Objective) -> bool:
        """Whether the condition holds at this step."""

    def should_terminate(self, objective: Objective) -> bool:
        """Checks the condition (once per step) and returns whether it held ``n`` times in a row."""
        count = self.global_state.get("count", 0)
        count = count + 1 if self.termination_criteria(objective) else 0
        self.global_state["count"] = count
        return count >= self._n

    def apply(self, objective: Objective) -> Objective:
        stop = self.should_terminate(objective)
        objective.should_terminate = bool(objective.should_terminate) or stop
        return objective


class TerminateNever(TerminationCriteriaBase):
    """Never asks to stop (a placeholder where a criterion is expected)."""

    def __init__(self):
        super().__init__()

    def termination_criteria(self, objective: Objective) -> bool:
        return False


class TerminateAfterNSteps(TerminationCriteriaBase):
    """Asks to stop once ``steps`` steps have been made (the flag is set by the ``steps``-th step).

    Args:
        steps: number of steps.
    """

    def __init__(self, steps: int):
        super().__init__()
        self.steps = int(steps)

    def termination_criteria(self, objective: Objective) -> bool:
        done = self.increment_counter("steps_done", 0) + 1
        return done >= self.steps


class TerminateAfterNEvaluations(TerminationCriteriaBase):
    """Asks to stop once the objective has been evaluated ``maxevals`` times.

    Evaluations are counted by the optimizer (``opt.num_evaluations``; a step without a closure
    counts as one). Evaluations that modules after this one make in the same step are counted at the
    next step, so put it last to count them at once.

    Args:
        maxevals: number of evaluations.
    """

    def __init__(self, maxevals: int):
        super().__init__()
        self.maxevals = int(maxevals)

    def termination_criteria(self, objective: Objective) -> bool:
        opt = objective.modular
        if opt is None:
            raise RuntimeError("TerminateAfterNEvaluations needs the optimizer (objective.modular) to count evaluations")
        return opt.num_evaluations >= self.maxevals


class TerminateAfterNSeconds(TerminationCriteriaBase):
    """Asks to stop once ``seconds`` have passed since the first step (measured with ``sec_fn``).

    Args:
        seconds: time budget.
        sec_fn: clock returning seconds (``time.time`` by default; ``time.perf_counter`` works too).
    """

    def __init__(self, seconds: float, sec_fn=time.time):
        super().__init__()
        self.seconds = float(seconds)
        self.sec_fn = sec_fn

    def termination_criteria(self, objective: Objective) -> bool:
        now = float(self.sec_fn())
        start = self.global_state.setdefault("start", now)
        return now - start >= self.seconds


class TerminateByGradientNorm(TerminationCriteriaBase):
    """Asks to stop when ``||g|| <= tol`` at ``n`` consecutive steps.

    Args:
        tol: tolerance.
        n: number of consecutive steps.
        ord: the norm (a number or ``"mad"``, ``"std"``, ``"l1"``, ``"linf"``...).
    """

    def __init__(self, tol: float = 1e-8, n: int = 3, ord: Metric = 2):
        check_ord(ord)
        super().__init__(n=n)
        self.tol = float(tol)
        self.ord = ord

    def termination_criteria(self, objective: Objective) -> bool:
        return float(global_metric(objective.get_grads(), self.ord)) <= self.tol


class TerminateByUpdateNorm(TerminationCriteriaBase):
    """Asks to stop when the last step was small: ``||x_t - x_{t-1}|| <= tol`` at ``n`` consecutive
    steps. The step is measured as the difference of the parameters between consecutive calls, so it
    does not matter where the module is in the chain.

    Args:
        tol: tolerance.
        n: number of consecutive steps.
        ord: the norm.
    """

    def __init__(self, tol: float = 1e-8, n: int = 3, ord: Metric = 2):
        check_ord(ord)
        super().__init__(n=n)
        self.tol = float(tol)
        self.ord = ord

    def termination_criteria(self, objective: Objective) -> bool:
        params = objective.params
        prev = [self.state[p].get("prev_params") for p in params]
        cur = [p.detach() for p in params]
        if any(x is None for x in prev):
            for p, c in zip(params, cur):
                self.state[p]["prev_params"] = c.clone()
            return False
        diff = torch._foreach_sub(cur, prev)
        torch._foreach_copy_(prev, cur)
        return float(global_metric(diff, self.ord)) <= self.tol


class TerminateOnLossReached(TerminationCriteriaBase):
    """Asks to stop when the loss at the current parameters is ``<= value``.

    Args:
        value: target loss.
    """

    def __init__(self, value: float):
        super().__init__()
        self.value = float(value)

    def termination_criteria(self, objective: Objective) -> bool:
        return _to_float(loss_for(objective)) <= self.value


class TerminateOnNoImprovement(TerminationCriteriaBase):
    """Asks to stop when the loss has not improved on its best value by more than ``tol`` for ``n``
    consecutive steps.

    Args:
        tol: smallest decrease counted as an improvement (None: any decrease).
        n: number of steps without improvement.
    """

    def __init__(self, tol: float | None = None, n: int = 10):
        super().__init__(n=n)
        self.tol = tol

    def termination_criteria(self, objective: Objective) -> bool:
        loss = _to_float(loss_for(objective))
        best = self.global_state.get("best")
        tol = self.tol or 0.0
        if best is None or loss < best - tol or (math.isnan(best) and not math.isnan(loss)):
            self.global_state["best"] = loss
            return False
        return True


class _Combine(TerminationCriteriaBase):
    _all = True

    def __init__(self, *criteria: TerminationCriteriaBase):
        if not criteria:
            raise ValueError(f"{type(self).__name__} needs at least one criterion")
        for c in criteria:
            if not isinstance(c, TerminationCriteriaBase):
                raise TypeError(f"{type(self).__name__} takes termination criteria, got {type(c).__name__}")
        super().__init__()
        self.set_children_sequence(criteria)

    def termination_criteria(self, objective: Objective) -> bool:
        # every criterion is checked at every step, so their counters stay consistent
        results = [c.should_terminate(objective) for c in self.get_children_sequence()]  # type: ignore[attr-defined]
        return all(results) if self._all else any(results)


class TerminateAll(_Combine):
    """Asks to stop when every one of ``criteria`` does."""


class TerminateAny(_Combine):
    """Asks to stop when any of ``criteria`` does."""

    _all = False


def _to_float(x: Any) -> float:
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)
