"""Ask/tell: the optimizer steps on its own thread; every evaluation it needs becomes a trial.

The session is a :class:`~torchzero.core.evaluation.BatchEvaluator`: ``evaluate_batch`` turns the
points a step needs into asks with deterministic ids (``"<step>:<index>"``) and waits until
they are told. Told answers are journalled before they are acknowledged; after a restart the
step is run again from the checkpoint and the journalled answers are replayed, so the study
continues exactly where it was.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import Any

import torch

from torchzero.core.evaluation import EvalResult, Point, materialize_stacked
from tz_client._proto.torchzero_service.v1 import service_pb2 as pb
from tz_client.codec import (CodecError, from_proto, loss_from_proto, loss_to_float, loss_to_proto, nbytes,
                             rows_to_protos, to_proto)

from ..errors import FailedPrecondition, InvalidArgument, ResourceExhausted, SessionClosed, Unavailable
from ..persistence import Store
from ..validation import check_loss, check_tensors
from .asks import MAX_EARLY, Answer, Ask, AskBook, ask_id, parse_id
from .base import Session
from .config import SessionConfig

log = logging.getLogger("tz_server.study")

MAX_ASK = 10_000
MAX_WAIT = 60.0
ASK_BYTES = 32 << 20
"""Bytes of points one Ask reply may carry (below the message limit)."""


class StudySession(Session):
    """A hosted optimizer driven by ask/tell.

    Two conditions on the session's lock keep thread hand-offs to the minimum (each costs a
    context switch and a GIL hand-off): askers wait on ``cond`` and are woken when trials are added
    (or the study ends); the stepping thread waits on ``step_cond`` and is woken once, by the tell
    that answers the last open trial of its batch.
    """

    def __init__(self, config: SessionConfig, params: list[torch.Tensor], store: Store | None = None,
                 state: dict[str, Any] | None = None, journal: Sequence[pb.TellItem] = (), **kw: Any):
        super().__init__(config, params, store, state, **kw)
        self.lower = self._bound(config.lower, "lower")
        self.upper = self._bound(config.upper, "upper")
        if self.lower is not None and self.upper is not None:
            for i, (lo, hi) in enumerate(zip(self.lower, self.upper)):
                if bool((torch.as_tensor(lo) > torch.as_tensor(hi)).any()):
                    raise InvalidArgument(f"lower[{i}] > upper[{i}] somewhere")
        self.trial_bytes = sum(nbytes(d, s) for s, d in self.layout)
        if self.trial_bytes > ASK_BYTES:
            raise InvalidArgument(f"a point of this study takes {self.trial_bytes} bytes; ask/tell carries at most "
                                  f"{ASK_BYTES} per reply (use a RemoteOptimizer for large models)")
        self.book = AskBook(step=self.step)
        self.step_cond = threading.Condition(self.lock)
        self._waiting = 0  # askers blocked in ask() for a trial
        self.best: tuple[float, Any, list[torch.Tensor], str] | None = None
        if state is not None and state.get("best") is not None:
            b = state["best"]
            self.best = (float(b["value"]), b["loss"], [t.to(self.device) for t in b["params"]], str(b["id"]))
        for item in journal:
            pid = parse_id(item.id)
            if pid is None or pid[0] < self.step:
                continue
            try:
                self.book.early[item.id] = self._decode(item)
            except (InvalidArgument, CodecError) as e:
                log.warning("%s: dropping journal record %s: %s", self.name, item.id, e)
        self.journal = store.journal(self.name) if store is not None else None
        self._journal_gap = False  # a tell could not be journalled: checkpoint at the next step
        if state is None:
            with torch.no_grad():
                self._project()
            self.save(force=True)
        self._thread = threading.Thread(target=self._run, name=f"tz-study-{self.name}", daemon=True)
        self._thread.start()

    # -- bounds -----------------------------------------------------------------------------------
    def _bound(self, b: Any, which: str) -> list[Any] | None:
        if b is None:
            return None
        if isinstance(b, (int, float)):
            if math.isnan(b):
                raise InvalidArgument(f"{which} bound is nan")
            return [b] * len(self.params)
        if len(b) != len(self.params):
            raise InvalidArgument(f"{which}: expected {len(self.params)} tensors (one per parameter), got {len(b)}")
        out = []
        for i, (t, (shape, dtype)) in enumerate(zip(b, self.layout)):
            if t.dim() != 0 and tuple(t.shape) != shape:
                raise InvalidArgument(f"{which}[{i}]: expected shape {list(shape)} or a scalar, got {list(t.shape)}")
            if bool(torch.isnan(t).any()):
                raise InvalidArgument(f"{which}[{i}]: nan in bound")
            out.append(t.to(device=self.device, dtype=dtype))
        return out

    def _clamp(self, xs: list[torch.Tensor]) -> None:
        for i, x in enumerate(xs):
            self._clamp_one(i, x)

    def _clamp_one(self, i: int, x: torch.Tensor) -> None:
        """Clamps ``x`` (parameter ``i``, or a stack of values of it) into the bounds, in place."""
        lo = None if self.lower is None else self.lower[i]
        hi = None if self.upper is None else self.upper[i]
        if lo is None and hi is None:
            return
        if isinstance(lo, torch.Tensor) or isinstance(hi, torch.Tensor):
            torch.clamp(x, min=_as_tensor(lo, x), max=_as_tensor(hi, x), out=x)
        else:
            x.clamp_(min=lo, max=hi)

    def _project(self) -> None:
        self._clamp([p.data for p in self.params])

    # -- the stepping thread ----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                with self.cond:
                    if self.closed or self.finished:
                        return
                    self.book.new_step(self.step)
                with self.rng.owned():
                    self.opt.step(self)
                    with torch.no_grad():
                        self._project()
                with self.cond:
                    if self.opt.should_terminate:
                        self.finished = True
                        self.cond.notify_all()  # askers learn that no trial will come
                    self.book.new_step(self.step)
                self._save_between_steps()
        except SessionClosed:
            return
        except Exception as e:  # a module error: the session reports it and stops
            log.exception("session %s failed at step %d", self.name, self.step)
            with self.cond:
                self.failed = f"{type(e).__name__}: {e}"
                self.cond.notify_all()
                self.step_cond.notify_all()

    def _save_between_steps(self, force: bool = False) -> None:
        if self.store is None:
            return
        with self.cond:
            if self.closed:
                return
            if self.save(force or self._journal_gap):  # (the journal restarts from the new checkpoint)
                journal, early = self.journal, [a.item for a in self.book.early.values()]
                assert journal is not None
                self._journal_gap = not self.writes.run("tell journal", lambda: journal.rewrite(early))

    def checkpoint_state(self) -> dict[str, Any]:
        st = super().checkpoint_state()
        if self.best is not None:
            value, loss, params, tid = self.best
            st["best"] = {"value": value, "loss": loss, "params": [p.detach().to("cpu", copy=True) for p in params],
                          "id": tid}  # (a copy: the point may be a row of a batch)
        return st

    # -- the evaluator the optimizer calls ------------------------------------------------------------
    def evaluate_batch(self, points: Sequence[Point], backward: bool = False) -> list[EvalResult]:
        step = self.book.step
        asks = []
        for xs, msgs in zip(*self._build(points)):
            k = self.book.next_index
            self.book.next_index += 1
            tid = ask_id(step, k)
            asks.append(Ask(tid, step, k, xs, backward, pb.Trial(id=tid, params=msgs, needs_grad=backward)))
        with self.cond:
            for a in asks:
                ans = self.book.early.pop(a.id, None)
                if ans is not None and (ans.grads is not None or not a.needs_grad):
                    self.book.open_count += 1  # _apply counts it as answered
                    self._apply(a, ans)
                self.book.add(a)
            open_ = [a for a in asks if not a.done]
            if open_:
                self.cond.notify_all()  # askers: new trials
        if open_:
            with self.rng.released(), self.cond:
                while any(not a.done for a in open_):  # woken by the tell of the last open trial
                    if self.closed:
                        raise SessionClosed(self.name)
                    self.step_cond.wait()
        return [EvalResult(a.loss, a.grads) for a in asks]

    def _build(self, points: Sequence[Point]) -> tuple[list[list[torch.Tensor]], list[list[Any]]]:
        """The points as tensors of the study's own (clamped into the bounds) and as messages.

        Per parameter, the values of all points are one new tensor, clamped and encoded at once;
        each point's tensors are rows of those stacks."""
        if not points:
            return [], []
        rows, msgs = [], []
        with torch.no_grad():
            for j, x in enumerate(materialize_stacked(points)):
                self._clamp_one(j, x)
                rows.append(x.unbind(0))
                msgs.append(rows_to_protos(x))
        return ([[r[i] for r in rows] for i in range(len(points))],
                [[m[i] for m in msgs] for i in range(len(points))])

    def _apply(self, a: Ask, ans: Answer) -> None:
        """Records the answer (under the lock)."""
        a.done = True
        a.loss = ans.loss
        a.grads = ans.grads
        self.book.open_count -= 1
        self.evaluations += 1
        v = loss_to_float(ans.loss)
        if v == v and (self.best is None or v < self.best[0]):
            self.best = (v, ans.loss, a.point, a.id)

    # -- ask / tell ------------------------------------------------------------------------------------
    def ask(self, client_id: str, n: int = 1, wait: float = 0.0, resume: bool = False, spare: int = 0) -> pb.AskReply:
        """Up to ``n`` trials for ``client_id`` (waiting up to ``wait`` s for one), plus up to ``spare``
        more while no other client is waiting for a trial (a client's prefetch never starves another)."""
        limit = min(MAX_ASK, max(1, ASK_BYTES // max(1, self.trial_bytes)))
        n = max(1, min(int(n) or 1, limit))
        spare = max(0, min(int(spare), limit - n))
        end = time.monotonic() + min(max(wait, 0.0), MAX_WAIT)
        timeout = self.config.ask_timeout
        with self.cond:
            while True:
                if self.failed:
                    raise FailedPrecondition(f"session {self.name} failed: {self.failed}")
                if self.closed:
                    raise Unavailable(f"session {self.name} is closed")
                asks = self.book.hand_out(client_id, n + (spare if self._waiting == 0 else 0), timeout, resume)
                if asks or self.finished:
                    break
                now = time.monotonic()
                if now >= end:
                    break
                t = end - now
                nd = self.book.next_deadline()
                if nd is not None:
                    t = min(t, max(nd - now, 1e-3))
                self._waiting += 1
                try:
                    self.cond.wait(t)
                finally:
                    self._waiting -= 1
            return pb.AskReply(trials=[a.proto for a in asks], step=self.book.step, finished=self.finished)

    def release(self, client_id: str, ids: Sequence[str]) -> int:
        """Hands back trials ``client_id`` held but will not evaluate; returns how many were open."""
        with self.cond:
            n = self.book.release(client_id, list(ids))
            if n:
                self.cond.notify_all()  # askers: trials are available
        return n

    def _decode(self, item: pb.TellItem) -> Answer:
        if not item.grads and item.loss.WhichOneof("value") == "number":  # the common case, kept cheap
            v = item.loss.number
            if v - v == 0 or self.config.allow_nonfinite:  # (inf - inf and nan - nan are nan)
                return Answer(v, None, item)
        where = f"tell {item.id!r}"
        try:
            loss = loss_from_proto(item.loss, f"{where}: loss", self.device)
            grads = [from_proto(g, f"{where}: grads[{i}]", self.device) for i, g in enumerate(item.grads)] or None
        except CodecError as e:
            raise InvalidArgument(str(e)) from None
        check_loss(loss, where, finite=not self.config.allow_nonfinite)
        if grads is not None:
            check_tensors(grads, self.layout, f"{where}: grads", finite=not self.config.allow_nonfinite)
        return Answer(loss, grads, item)

    def tell(self, items: Sequence[pb.TellItem]) -> tuple[int, int]:
        """Applies told results; returns ``(accepted, ignored)``. All-or-nothing on bad input."""
        decoded = []
        for it in items:
            pid = parse_id(it.id)
            if pid is None:
                raise InvalidArgument(f"malformed trial id {it.id!r}")
            decoded.append((pid, self._decode(it)))
        accepted = ignored = 0
        journal: list[pb.TellItem] = []
        with self.cond:
            if self.failed:
                raise FailedPrecondition(f"session {self.name} failed: {self.failed}")
            for pid, ans in decoded:
                a = self.book.pending.get(ans.item.id)
                if a is not None and not a.done and a.needs_grad and ans.grads is None:
                    raise InvalidArgument(f"trial {a.id} needs a gradient (needs_grad=True)")
            for pid, ans in decoded:
                tid = ans.item.id
                a = self.book.pending.get(tid)
                if a is not None:
                    if a.done:
                        ignored += 1
                        continue
                    self._apply(a, ans)
                elif pid[0] < self.book.step or tid in self.book.early:
                    ignored += 1
                    continue
                elif len(self.book.early) >= MAX_EARLY:
                    raise ResourceExhausted(f"too many answers for trials that do not exist yet ({MAX_EARLY})")
                else:
                    self.book.early[tid] = ans
                accepted += 1
                journal.append(ans.item)
            if journal and self.journal is not None:
                own = self.journal
                if not self.writes.run("tell journal", lambda: own.append(journal)):
                    self._journal_gap = True  # (checkpointed at the next step instead)
            if accepted and self.book.open_count <= 0:
                self.step_cond.notify()  # the step has every answer it waits for
        return accepted, ignored

    def best_reply(self) -> pb.BestReply:
        with self.cond:
            if self.best is None:
                return pb.BestReply(found=False, evaluations=self.evaluations)
            _, loss, params, tid = self.best
            return pb.BestReply(found=True, loss=loss_to_proto(loss), params=[to_proto(p) for p in params],
                                trial_id=tid, evaluations=self.evaluations)

    def best_loss(self) -> float | None:
        b = self.best
        return None if b is None else b[0]

    def close(self, delete: bool = False) -> None:
        super().close(delete)
        with self.cond:
            self.step_cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        if self.journal is not None:
            self.journal.close()


def _as_tensor(b: Any, like: torch.Tensor) -> torch.Tensor | None:
    if b is None or isinstance(b, torch.Tensor):
        return b
    return torch.full_like(like, float(b))
