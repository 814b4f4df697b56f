"""Synchronous data parallel: the gradient pushes of one step from ``workers`` ranks.

Shared by the local training session and the Ray sharded session: both collect one push per rank,
average them in rank order (so the result does not depend on arrival order) and step once; a step
whose missing ranks do not push within the sync timeout is abandoned (nothing applied) and every
waiting worker gets ABORTED naming them.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ..errors import Aborted, FailedPrecondition, Unavailable

log = logging.getLogger("tz_server.rounds")


class StepOutcome:
    """What a worker gets back: the step count after the step, the loss, and whether it replayed."""

    def __init__(self, step: int, loss: Any, replayed: bool):
        self.step = step
        self.loss = loss
        self.replayed = replayed


def check_step(session: Any, step: int, current: int, last_loss: Any) -> StepOutcome | None:
    """None if ``step`` is the one ``session`` (now at ``current``) runs next; the replay outcome if
    it is already done (a retried call); raises if the session cannot step or lost steps."""
    if session.failed:
        raise FailedPrecondition(f"session {session.name} failed: {session.failed}")
    if session.closed:
        raise Unavailable(f"session {session.name} is closed")
    if step < current:
        return StepOutcome(current, last_loss, True)
    if step > current:
        raise Aborted(f"session {session.name} is at step {current} but the worker is at step {step} "
                      "(the server lost steps); reopen the session to resynchronise")
    return None


def check_open(session: Any) -> None:
    """Raises unless ``session`` (``.name``, ``.closed``, ``.failed``) can still take steps."""
    if session.closed:
        raise Unavailable(f"session {session.name} is closed")
    if session.failed:
        raise FailedPrecondition(f"session {session.name} failed: {session.failed}")


class PushRound:
    """The pushes of the current step; every method is called under the session's ``cond``."""

    def __init__(self, name: str, workers: int, sync_timeout: float):
        self.name = name
        self.workers = workers
        self.sync_timeout = sync_timeout
        self.pushed: dict[int, list[torch.Tensor]] = {}
        self.losses: dict[int, Any] = {}
        self.round = 0          # bumped when a step's pushes are abandoned
        self.started = 0.0      # when the first push of the current round arrived
        self.abort_reason = ""  # why the last round was abandoned

    def add(self, cond: threading.Condition, step: int, rank: int, grads: list[torch.Tensor], loss: Any,
            current_step: Callable[[], int], check: Callable[[], None],
            apply: Callable[[list[torch.Tensor], Any], None]) -> None:
        """Adds ``rank``'s push for ``step``. The last push of the round calls ``apply(mean grads,
        mean loss)``; the others wait until the step is taken (``current_step()`` moves on),
        ``check()`` raises (session closed or failed), or the round is abandoned."""
        if not self.pushed:
            self.started = time.monotonic()
        self.pushed.setdefault(rank, grads)
        if loss is not None:
            self.losses.setdefault(rank, loss)
        if len(self.pushed) == self.workers:
            apply(*self._take())
            return
        my_round = self.round
        while current_step() == step:
            check()
            if self.round != my_round:  # another waiter gave up on this step
                raise Aborted(self.abort_reason)
            left = self.started + self.sync_timeout - time.monotonic()
            if left <= 0:
                raise Aborted(self._abandon(cond, step))
            cond.wait(left)

    def _take(self) -> tuple[list[torch.Tensor], Any]:
        ranks = sorted(self.pushed)
        if self.workers == 1:
            grads = self.pushed[ranks[0]]
        else:
            n = len(self.pushed[ranks[0]])
            grads = [torch.stack([self.pushed[r][i] for r in ranks]).sum(0).div_(self.workers) for i in range(n)]
        losses = [self.losses[r] for r in ranks if r in self.losses]
        loss = None
        if losses:
            loss = sum(float(x) for x in losses) / len(losses) if self.workers > 1 else losses[0]
        self.pushed.clear()
        self.losses.clear()
        return grads, loss

    def _abandon(self, cond: threading.Condition, step: int) -> str:
        """Drops the pushes of an incomplete step; returns the error message."""
        have = sorted(self.pushed)
        missing = (r for r in range(self.workers) if r not in self.pushed)  # (workers may be huge: listed lazily)
        why = (f"session {self.name}, step {step}: no gradients from rank(s) "
               f"{_some(missing, self.workers - len(have))} within {self.sync_timeout:g} s (sync timeout; received "
               f"from rank(s) {_some(iter(have), len(have))}); the step was not applied: retry it once every worker is back")
        log.warning("%s", why)
        self.pushed.clear()
        self.losses.clear()
        self.round += 1
        self.abort_reason = why
        cond.notify_all()
        return why


def _some(ranks: Iterator[int], count: int, shown: int = 16) -> str:
    """``[0, 1, 2]``, or the first ``shown`` of ``count`` ranks and how many there are."""
    first = list(itertools.islice(ranks, shown))
    return str(first) if count <= shown else f"{str(first)[:-1]}, ...] ({count} in all)"
