"""Training sessions: stepped by workers that push gradients or answer closure calls.

Every step carries the step number the worker is at, which makes steps exactly-once: a worker
retrying a step the server already applied (the reply was lost, or the server restarted after
checkpointing it) just gets the current parameters back.
"""
from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch

from torchzero.core.evaluation import BatchEvaluator, EvalResult, Point, materialize

from ..errors import FailedPrecondition, InvalidArgument, SessionClosed, Unavailable
from ..persistence import Store
from ..validation import check_finite
from .base import Session, check_group_options, describe_groups
from .config import SessionConfig, group_indices
from .pieces import PieceStepper, why_not_pipelined
from .rounds import PushRound, StepOutcome, check_open, check_step

log = logging.getLogger("tz_server.trainer")

# evaluate(point or None for "the point the client already holds", backward) -> (loss, grads or None)
RemoteEval = Callable[[list[torch.Tensor] | None, bool], tuple[Any, list[torch.Tensor] | None]]


class RemoteClosure(BatchEvaluator):
    """Evaluations that go back to the client's closure, one point at a time.

    The client holds the parameters as they were at the start of the step; a point equal to the
    last one it was sent (or holds) is not sent again. Points name the parameters of ``start``
    with ``requires_grad`` only (those the optimizer steps); the client gets and answers for all of
    them, the frozen ones at their values.
    """

    def __init__(self, fn: RemoteEval, start: Sequence[torch.Tensor], rng: Any = None):
        self.fn = fn
        self.rng = rng
        self.last: list[torch.Tensor] = [p.detach().clone() for p in start]
        trainable = [i for i, p in enumerate(start) if p.requires_grad]
        self.trainable = trainable if len(trainable) < len(self.last) else None
        self.calls = 0

    def evaluate_batch(self, points: Sequence[Point], backward: bool = False) -> list[EvalResult]:
        out = []
        for pt in points:
            x = [t.detach() for t in materialize(pt)]
            if self.trainable is not None:  # the frozen parameters keep their values
                full = list(self.last)
                for i, t in zip(self.trainable, x):
                    full[i] = t
                x = full
            same = all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(x, self.last))
            if self.rng is not None:
                with self.rng.released():  # other sessions may compute while the client evaluates
                    loss, grads = self.fn(None if same else x, backward)
            else:
                loss, grads = self.fn(None if same else x, backward)
            if not same:
                self.last = [t.clone() for t in x]
            if grads is not None and self.trainable is not None:
                grads = [grads[i] for i in self.trainable]
            self.calls += 1
            out.append(EvalResult(loss, grads))
        return out


class TrainSession(Session):
    """A hosted optimizer stepped by ``workers`` training processes."""

    def __init__(self, config: SessionConfig, params: list[torch.Tensor], store: Store | None = None,
                 state: dict[str, Any] | None = None, piece_bytes: int = 0, **kw: Any):
        super().__init__(config, params, store, state, **kw)
        self.workers = max(1, int(config.workers))
        self.stepper: PieceStepper | None = None
        if config.pipelined:
            why = "it needs workers=1" if self.workers != 1 else why_not_pipelined(self.opt, self.params)
            if why is not None:
                raise InvalidArgument(f"pipelined=True: {why}")
            stepper = PieceStepper(self.opt, self.params, config.modules, piece_bytes) if piece_bytes > 0 else None
            if stepper is not None and stepper.worthwhile:  # one piece: nothing to overlap
                self.stepper = stepper
        self.round = PushRound(self.name, self.workers, config.sync_timeout)
        self._frozen: list[int] = []  # parameters the client has with requires_grad=False
        self._last_loss: Any = None
        self._pool: list[list[torch.Tensor]] = []
        self._pool_lock = threading.Lock()
        if state is None:
            self.save(force=True)

    # -- receive buffers ---------------------------------------------------------------------------
    # Gradients are received into buffers that are reused from step to step: touching fresh memory
    # for every push costs more than moving the bytes on many machines.
    def take_buffers(self) -> list[torch.Tensor]:
        """CPU tensors shaped like the parameters to receive a push into (pinned for CUDA sessions)."""
        with self._pool_lock:
            if self._pool:
                return self._pool.pop()
        pin = self.device.type == "cuda"
        return [torch.empty(shape, dtype=dtype, pin_memory=pin) for shape, dtype in self.layout]

    def return_buffers(self, bufs: list[torch.Tensor]) -> None:
        """Hands receive buffers back, unless a module kept a reference to them in its state."""
        if self.device.type == "cpu" and _referenced(self.opt.unrolled_modules, bufs):
            return
        with self._pool_lock:
            if len(self._pool) <= self.workers:
                self._pool.append(bufs)

    # -- parameter-group options set by the client (e.g. an LR scheduler) ---------------------------
    def group_indices(self) -> list[list[int]]:
        """The parameter indices of each parameter group."""
        return group_indices(self.config, len(self.params))

    def set_frozen(self, frozen: Sequence[int]) -> list[int]:
        """Marks the parameters ``frozen`` (the client's ``requires_grad=False`` ones) so that the
        optimizer skips them, and every other one as trainable; returns the previous frozen ones."""
        with self.cond:
            previous = self._frozen
            if list(frozen) != previous:  # (most steps: no change, nothing to do)
                freeze(self.params, frozen)
                self._frozen = list(frozen)
            return previous

    def current_groups(self) -> list[dict[str, Any]]:
        """The parameter groups with their explicit options now, as spec values (for SessionInfo)."""
        with self.cond:
            return describe_groups(self.group_indices(), [g.options() for g in self.opt.param_groups])

    def set_group_options(self, options: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replaces the explicit options of every parameter group (between steps); returns the
        previous ones. Modules read them live; a pipelined session rebuilds its pieces."""
        with self.cond:
            check_group_options(self.opt.unrolled_modules, options, self.config.allow_nonfinite)
            previous = [g.options() for g in self.opt.param_groups]
            for g, opts in zip(self.opt.param_groups, options):
                g.set_options(opts)
            if self.stepper is not None:
                self.stepper.invalidate()
            return previous

    def _check_step(self, step: int) -> StepOutcome | None:
        return check_step(self, step, self.step, self._last_loss)

    def push(self, step: int, rank: int, grads: list[torch.Tensor], loss: Any = None) -> StepOutcome:
        """Adds one worker's gradients (validated, on the session's device); the last of the
        ``workers`` pushes averages them (in rank order, so the result does not depend on arrival
        order) and steps. Blocks until the step is done.

        If the missing ranks have not pushed ``config.sync_timeout`` seconds after the first push of
        the step, the step is abandoned: the pushed gradients are dropped (nothing is applied) and
        every waiting worker gets ABORTED naming the missing ranks; retrying the step starts over.
        """
        if not 0 <= rank < self.workers:
            raise InvalidArgument(f"rank {rank} out of range for a session with {self.workers} worker(s)")
        with self.cond:
            done = self._check_step(step)
            if done is not None:
                return done
            self.round.add(self.cond, step, rank, grads, loss, lambda: self.step, lambda: check_open(self),
                           self._apply_pushed)
            return StepOutcome(self.step, self._last_loss, False)

    def _apply_pushed(self, grads: list[torch.Tensor], loss: Any) -> None:
        if self.stepper is not None:
            self.stepper.invalidate()
        try:
            for p, g in zip(self.params, grads):
                p.grad = g
            with self.rng.owned():
                self.opt.step()
            self.evaluations += self.workers
        except Exception as e:
            log.exception("session %s failed at step %d", self.name, self.step)
            self.failed = f"{type(e).__name__}: {e}"
            self.cond.notify_all()
            raise FailedPrecondition(f"session {self.name} failed: {self.failed}") from None
        finally:
            for p in self.params:
                p.grad = None
        self._last_loss = loss
        self.save()
        self.cond.notify_all()

    # -- pipelined pushes (element-wise chains, one worker) -----------------------------------------
    def can_pipeline(self, step: int) -> bool:
        """Whether a push for ``step`` will be stepped piece by piece as it arrives."""
        with self.cond:
            return self.stepper is not None and step == self.step and not self.failed and not self.closed

    def pipelined_push(self, step: int, grads: list[torch.Tensor], arrived: Any, emit: Callable[[int], None],
                       loss: Any = None) -> StepOutcome:
        """A push whose gradients are read into ``grads`` while ``arrived`` yields how many bytes are
        in; every piece is checked and stepped as soon as it is complete and ``emit(end byte)``
        announces the parameter bytes that are final. A step that fails part-way leaves no trace."""
        assert self.stepper is not None
        finite = not self.config.allow_nonfinite

        def check(views: list[torch.Tensor], indices: list[int]) -> None:
            if self.closed:
                raise Unavailable(f"session {self.name} is closed")
            if finite:
                check_finite(views, "grads", indices)

        with self.cond:
            done = self._check_step(step)
            if done is not None:
                for _ in arrived:
                    pass
                emit(sum(p.numel() * p.element_size() for p in self.params))
                return done
            if not self.stepper.built:
                self.stepper.build()
            self.stepper.run(grads, arrived, check, emit)
            self.evaluations += 1
            self._last_loss = loss
            self.save()
            self.cond.notify_all()
            emit(self.stepper.pieces[-1].end)
            return StepOutcome(self.step, loss, False)

    def closure_step(self, step: int, evaluate: RemoteEval) -> StepOutcome:
        """One step whose evaluations call ``evaluate`` (the client's closure)."""
        if self.workers != 1:
            raise FailedPrecondition("closure steps need a session with workers=1")
        with self.cond:
            done = self._check_step(step)
            if done is not None:
                return done
            remote = RemoteClosure(evaluate, self.params, self.rng)
            if self.stepper is not None:
                self.stepper.invalidate()
            # a step cut short (bad data from the client, a dropped stream) leaves no trace
            saved_state = copy.deepcopy(self.opt.state_dict())
            saved_params = [p.detach().clone() for p in self.params]
            try:
                with self.rng.owned():
                    loss = self.opt.step(remote)
            except BaseException as e:
                with torch.no_grad():
                    for p, s in zip(self.params, saved_params):
                        p.copy_(s)
                self.opt.load_state_dict(saved_state)
                if isinstance(e, SessionClosed):
                    raise Unavailable(f"session {self.name} is closed") from None
                raise
            finally:
                for p in self.params:
                    p.grad = None
            self.evaluations += remote.calls
            self._last_loss = loss.detach() if isinstance(loss, torch.Tensor) else loss
            self.save()
            self.cond.notify_all()
            return StepOutcome(self.step, self._last_loss, False)

    def close(self, delete: bool = False) -> None:
        if not delete:
            with self.cond:
                if not self.closed and self.failed is None:
                    try:
                        self.save(force=True)
                    except Exception as e:
                        log.error("final checkpoint of %s failed: %s", self.name, e)
        super().close(delete)


def freeze(params: Sequence[torch.Tensor], frozen: Sequence[int]) -> None:
    """``requires_grad=False`` for the parameters at the positions ``frozen`` (the optimizer skips
    them), True for every other one."""
    skip = set(frozen)
    for i, p in enumerate(params):
        p.requires_grad_(i not in skip)


def _referenced(modules: Sequence[Any], tensors: Sequence[torch.Tensor]) -> bool:
    """Whether any module's state holds a tensor sharing memory with ``tensors``."""
    ptrs = {t.untyped_storage().data_ptr() for t in tensors}

    def has(v: Any) -> bool:
        if isinstance(v, torch.Tensor):
            return v.untyped_storage().data_ptr() in ptrs
        if isinstance(v, (list, tuple)):
            return any(has(x) for x in v)
        if isinstance(v, dict):
            return any(has(x) for x in v.values())
        return False

    for m in modules:
        if any(has(st) for st in m.state.values()) or has(m.global_state):
            return True
    return False
