"""The book of evaluation requests of a study: pending asks, who holds them, their answers.

Only the current step's asks are kept (plus answers that arrived early, e.g. replayed from the
journal after a restart), so the cost of an ask or a tell does not grow with the study's history.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch

from tz_client._proto.torchzero_service.v1 import service_pb2 as pb

MAX_EARLY = 100_000
"""Answers kept for asks that do not exist yet (a client retrying after a server restart)."""


def ask_id(step: int, index: int) -> str:
    return f"{step}:{index}"


def parse_id(trial_id: str) -> tuple[int, int] | None:
    s, sep, k = trial_id.partition(":")
    if not sep or not s.isdigit() or not k.isdigit() or len(trial_id) > 40:
        return None
    return int(s), int(k)


@dataclass(eq=False)
class Ask:
    """One evaluation request: the point, whether a gradient is needed, and its answer."""

    id: str
    step: int
    index: int
    point: list[torch.Tensor]
    needs_grad: bool
    proto: pb.Trial
    holder: str | None = None
    deadline: float = 0.0
    done: bool = False
    loss: Any = None
    grads: list[torch.Tensor] | None = None


@dataclass
class Answer:
    """A told result, validated and decoded (``item`` is kept for the journal)."""

    loss: Any
    grads: list[torch.Tensor] | None
    item: pb.TellItem


@dataclass
class AskBook:
    """Pending asks of the current step, the hand-out queue and early answers."""

    step: int = 0
    next_index: int = 0
    pending: dict[str, Ask] = field(default_factory=dict)
    fresh: deque[Ask] = field(default_factory=deque)
    early: dict[str, Answer] = field(default_factory=dict)
    open_count: int = 0

    def new_step(self, step: int) -> None:
        self.step = step
        self.next_index = 0
        self.pending.clear()
        self.fresh.clear()
        self.open_count = 0
        if self.early:
            self.early = {k: v for k, v in self.early.items() if (parse_id(k) or (-1, 0))[0] >= step}

    def add(self, ask: Ask) -> None:
        self.pending[ask.id] = ask
        if not ask.done:
            self.fresh.append(ask)
            self.open_count += 1

    def hand_out(self, client_id: str, n: int, timeout: float, resume: bool) -> list[Ask]:
        """Up to ``n`` asks for ``client_id``: its own (``resume``), fresh ones, then expired ones."""
        now = time.monotonic()
        out: list[Ask] = []
        if resume:
            out.extend(a for a in self.pending.values() if a.holder == client_id and not a.done)
            del out[n:]
        while len(out) < n and self.fresh:
            a = self.fresh.popleft()
            if not a.done:
                out.append(a)
        if len(out) < n and self.open_count > len(out):
            for a in self.pending.values():
                if len(out) >= n:
                    break
                if not a.done and a.holder is not None and a.deadline <= now and a not in out:
                    out.append(a)
        for a in out:
            a.holder = client_id
            a.deadline = now + timeout
        return out

    def release(self, client_id: str, ids: list[str]) -> int:
        """Hands back open asks ``client_id`` holds (first in line for the next ``hand_out``)."""
        n = 0
        for tid in reversed(ids):
            a = self.pending.get(tid)
            if a is not None and not a.done and a.holder == client_id:
                a.holder = None  # (a held ask is never in ``fresh``)
                a.deadline = 0.0
                self.fresh.appendleft(a)
                n += 1
        return n

    def next_deadline(self) -> float | None:
        """When the earliest handed-out open ask expires (None if there is none)."""
        ds = [a.deadline for a in self.pending.values() if not a.done and a.holder is not None]
        return min(ds) if ds else None
