"""Training sessions whose parameters and optimizer state live in Ray actors (shards).

The coordinator (:class:`RaySession`) lives in the server process. It keeps a CPU copy of the
parameters (what ``Pull`` and every step reply stream back), averages the gradients of
``workers`` pushes, cuts them along the shard plan and sends each shard its part; all shards step
at once and their new parameters come back in parallel.

Fault tolerance: shard actors are created with ``max_restarts=-1``. The coordinator keeps the
shards' last checkpoint (in memory; also written to the state directory when the server has
one) and a log of the steps taken since. A shard that died is restarted by Ray; the coordinator
notices (the call failed, or the shard reports it is behind), restores the checkpoint, replays
the log (the same gradients, the same closure answers: the same state, bit for bit) and retries
the call. Nothing else in the session is affected.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from ...errors import FailedPrecondition, InvalidArgument, Unavailable
from ...persistence import Store, WriteGuard
from ...sessions.base import build_optimizer, check_group_options, decode_options, describe_groups
from ...sessions.config import OPTIMIZER, SessionConfig, group_indices
from ...sessions.rounds import PushRound, StepOutcome, check_open, check_step
from ...validation import check_floating_point
from .actor import ShardActor, StaleShard
from .sharding import ShardPlan, check_shardable, group_of, plan_shards, shard_settings

if TYPE_CHECKING:
    from . import RayBackend

log = logging.getLogger("tz_server.ray")

FORMAT = "tz-ray-session/1"
MAX_RECOVERIES = 3
RECOVERY_TIMEOUT = 120.0


def _is_stale(e: BaseException) -> bool:
    return isinstance(e, StaleShard) or isinstance(getattr(e, "cause", None), StaleShard)


class RaySession:
    """An OPTIMIZER session split across ``len(plans)`` shard actors (one when unsharded).

    Args:
        backend: the owning backend (Ray options, store, checkpoint frequency).
        config: the session's configuration.
        params: the initial parameters (CPU).
        shards: number of shards for a new session (a restored one keeps its saved plan).
        state: a checkpoint written by :meth:`checkpoint_state` (restore), else None.
    """

    def __init__(self, backend: "RayBackend", config: SessionConfig, params: list[torch.Tensor], shards: int = 1,
                 state: dict[str, Any] | None = None):
        self.backend = backend
        self.config = config
        self.name = config.name
        check_floating_point([p.dtype for p in params])
        self.params = [p.detach().cpu().clone() for p in params]
        self.layout = [(tuple(p.shape), p.dtype) for p in self.params]
        self.input_device = "cpu"
        self.workers = max(1, int(config.workers))
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.store: Store | None = backend.store
        self.writes = WriteGuard(self.name)
        self.checkpoint_every = max(1, int(backend.checkpoint_every))
        self.evaluations = 0
        self.closed = False
        self.failed: str | None = None
        self.finished = False
        self.recoveries = 0
        self.round = PushRound(self.name, self.workers, float(getattr(config, "sync_timeout", 300.0) or 300.0))
        self._last_loss: Any = None
        if state is not None:
            self.plans = [ShardPlan.from_state(p) for p in state["plans"]]
            self._checkpoint: list[dict[str, Any]] = list(state["shards"])
            self._step = int(state["step"])
            self.evaluations = int(state.get("evaluations", 0))
            self._options = [dict(o) for o in state.get("options") or self._initial_options()]
        else:
            self._options = self._initial_options()
            self.plans = plan_shards(self.layout, config.groups, shards)
            self._step = 0
            self._checkpoint = [self._initial(plan) for plan in self.plans]
        self._group_of = group_of(config.groups, len(self.layout))
        self._frozen: list[int] = []  # parameters the client has with requires_grad=False
        self._settings: list[tuple] | None = None  # each shard's view of the two (None: recompute)
        self._modules: list[Any] | None = None  # the chain's modules, for the sharding checks
        self._log: list[list[tuple]] = [[] for _ in self.plans]
        self._saved_step = self._step
        self.handles = [self._spawn(k) for k in range(len(self.plans))]
        try:  # constructing the shards builds their optimizers: report a bad chain now
            ray.get([h.step_count.remote() for h in self.handles])
        except RayTaskError as e:
            self._kill()
            raise InvalidArgument(f"cannot build the optimizer on the shards: {getattr(e, 'cause', e)}") from None
        if state is None:
            self.save(force=True)

    # -- shards ---------------------------------------------------------------------------------------
    def _initial(self, plan: ShardPlan) -> dict[str, Any]:
        standins = [torch.zeros(1, dtype=dt) for _, dt in plan.standins]
        return {"params": [self.params[i] for i in plan.indices] + standins, "optimizer": None, "rng": None}

    def _spawn(self, k: int) -> Any:
        opts: dict[str, Any] = {"max_restarts": -1, "max_task_retries": 0}
        device = "cpu"
        if torch.device(self.config.device).type == "cuda":
            device = "cuda"
            opts["num_gpus"] = self.backend.shard_gpus
        if self.backend.shard_cpus is not None:
            opts["num_cpus"] = self.backend.shard_cpus
        cls = ray.remote(ShardActor).options(**opts)
        return cls.remote(self.config.to_state(), self.plans[k].to_state(), self._checkpoint[k], device)

    @property
    def shards(self) -> int:
        return len(self.plans)

    def _call(self, method: str, args: Any = None) -> list[Any]:
        """Calls ``method`` on every shard at once (``args(k)``: its arguments) and gathers the
        results, restoring and retrying shards that died or were restarted."""
        args = args or (lambda k: ())
        refs = [getattr(h, method).remote(*args(k)) for k, h in enumerate(self.handles)]
        out = []
        for k, ref in enumerate(refs):
            for attempt in range(MAX_RECOVERIES + 1):
                try:
                    out.append(ray.get(ref))
                    break
                except (RayActorError, RayTaskError) as e:
                    if isinstance(e, RayTaskError) and not _is_stale(e):
                        raise
                    if attempt == MAX_RECOVERIES:
                        raise Unavailable(f"session {self.name}: shard {k} keeps failing: {e}") from None
                    self._recover(k, e)
                    ref = getattr(self.handles[k], method).remote(*args(k))
        return out

    def _recover(self, k: int, why: BaseException) -> None:
        """Restores shard ``k`` (restarted by Ray) from the last checkpoint and the step log."""
        log.warning("session %s: shard %d lost its state (%s); restoring it from the checkpoint at step %d and "
                    "replaying %d step(s)", self.name, k, type(why).__name__, self._saved_step, len(self._log[k]))
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        while True:
            try:
                at = ray.get(self.handles[k].restore.remote(self._checkpoint[k], self._log[k]), timeout=RECOVERY_TIMEOUT)
                break
            except (RayActorError, GetTimeoutError) as e:
                if time.monotonic() > deadline:
                    raise Unavailable(f"session {self.name}: shard {k} could not be restarted: {e}") from None
                time.sleep(0.2)
        self.recoveries += 1
        if at != self._step:
            raise FailedPrecondition(f"session {self.name}: shard {k} restored to step {at}, expected {self._step}")

    def _kill(self) -> None:
        for h in getattr(self, "handles", []):
            try:
                ray.kill(h, no_restart=True)
            except Exception:  # already gone
                pass

    # -- parameter-group options and frozen parameters set by the client -----------------------------
    def _initial_options(self) -> list[dict[str, Any]]:
        groups = self.config.groups
        return [decode_options(g.get("options", {}), f"groups[{gi}]") for gi, g in enumerate(groups)] if groups else [{}]

    def group_indices(self) -> list[list[int]]:
        return group_indices(self.config, len(self.layout))

    def current_groups(self) -> list[dict[str, Any]]:
        with self.cond:
            return describe_groups(self.group_indices(), self._options)

    def set_group_options(self, options: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replaces every group's explicit options from the next step on (each shard gets its
        groups' with its step); returns the previous ones. The values are checked against the
        chain's modules first, and a sharded session checks that the chain can still be split."""
        with self.cond:
            if self._modules is None:
                probe = [torch.zeros(1, requires_grad=True) for _ in self.layout]
                self._modules = build_optimizer(self.config, probe).unrolled_modules
            check_group_options(self._modules, options, self.config.allow_nonfinite)
            if self.shards > 1:
                check_shardable(self._modules, [{"params": idx, "options": o}
                                                for idx, o in zip(self.group_indices(), options)])
            previous, self._options = self._options, [dict(o) for o in options]
            self._settings = None
            return previous

    def set_frozen(self, frozen: list[int]) -> list[int]:
        """Marks the parameters ``frozen`` (skipped by the optimizer from the next step on) and every
        other one trainable; returns the previous frozen ones."""
        with self.cond:
            previous = self._frozen
            if list(frozen) != previous:
                self._frozen = list(frozen)
                self._settings = None
            return previous

    def _shard_settings(self) -> list[tuple]:
        if self._settings is None:
            self._settings = [shard_settings(plan, self.layout, self._group_of, self._options, self._frozen)
                              for plan in self.plans]
        return self._settings

    # -- basics ---------------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return OPTIMIZER

    @property
    def step(self) -> int:
        return self._step

    def status(self) -> str:
        if self.failed:
            return f"failed: {self.failed}"
        return "finished" if self.finished else "running"

    def best_loss(self) -> float | None:
        return None

    def params_snapshot(self) -> list[torch.Tensor]:
        with self.lock:
            return [p.clone() for p in self.params]

    # -- persistence ----------------------------------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Any]:
        return {"format": FORMAT, "config": self.config.to_state(), "params": list(self.params),
                "plans": [p.to_state() for p in self.plans], "shards": self._checkpoint, "step": self._step,
                "evaluations": self.evaluations, "options": self._options}

    def save(self, force: bool = False) -> None:
        """Takes a checkpoint of every shard when due (and writes it to the state directory)."""
        if self.closed or (not force and self._step - self._saved_step < self.checkpoint_every):
            return
        if self._step != self._saved_step or any(self._log):
            self._checkpoint = self._call("state")
            self._log = [[] for _ in self.plans]
            self._saved_step = self._step
        if self.store is not None:
            state, store = self.checkpoint_state(), self.store
            self.writes.run("checkpoint", lambda: store.save(self.name, state))

    # -- steps ----------------------------------------------------------------------------------------
    def _check_step(self, step: int) -> StepOutcome | None:
        return check_step(self, step, self._step, self._last_loss)

    def push(self, step: int, rank: int, grads: list[torch.Tensor], loss: Any = None) -> StepOutcome:
        """One worker's gradients; the last of ``workers`` pushes averages them (in rank order) and
        steps every shard. As for local sessions (:class:`~tz_server.sessions.rounds.PushRound`), a
        step whose missing ranks do not push within ``config.sync_timeout`` is abandoned."""
        if not 0 <= rank < self.workers:
            raise InvalidArgument(f"rank {rank} out of range for a session with {self.workers} worker(s)")
        with self.cond:
            done = self._check_step(step)
            if done is not None:
                return done
            self.round.add(self.cond, step, rank, grads, loss, lambda: self._step, lambda: check_open(self),
                           self._apply_pushed)
            return StepOutcome(self._step, self._last_loss, False)

    def _apply_pushed(self, grads: list[torch.Tensor], loss: Any) -> None:
        try:
            self._step_shards([g.detach().cpu() for g in grads])
            self.evaluations += self.workers
        except Unavailable:
            self.cond.notify_all()
            raise
        except Exception as e:
            log.exception("session %s failed at step %d", self.name, self._step)
            self.failed = f"{type(e).__name__}: {getattr(e, 'cause', None) or e}"
            self.cond.notify_all()
            raise FailedPrecondition(f"session {self.name} failed: {self.failed}") from None
        self._last_loss = loss
        self.save()
        self.cond.notify_all()

    def _step_shards(self, grads: list[torch.Tensor]) -> None:
        parts = [[grads[i] for i in plan.indices] for plan in self.plans]
        step, settings = self._step, self._shard_settings()
        outs = self._call("push", lambda k: (step, parts[k], settings[k]))
        self._took_step(outs)
        for k in range(self.shards):
            self._log[k].append(("push", parts[k], settings[k]))

    def _took_step(self, outs: list[list[torch.Tensor]]) -> None:
        for plan, out in zip(self.plans, outs):
            for i, t in zip(plan.indices, out):
                self.params[i] = t
        self._step += 1

    def closure_step(self, step: int, evaluate: Any) -> StepOutcome:
        """A step whose evaluations call ``evaluate`` (the client's closure).

        Unsharded: the step runs on the shard, which sends every evaluation it needs back here.
        Sharded: the chain is per-parameter (checked at creation), so it evaluates the objective
        once, at the current point, for the gradient; that gradient is pushed to every shard.
        """
        if self.workers != 1:
            raise FailedPrecondition("closure steps need a session with workers=1")
        with self.cond:
            done = self._check_step(step)
            if done is not None:
                return done
            if self.shards == 1:
                loss = self._closure_on_shard(step, evaluate)
            else:
                trains = len(self._frozen) < len(self.layout)  # (else the step changes nothing: no gradient,
                loss, grads = evaluate(None, trains)              # as tz.Optimizer evaluates it then)
                grads = [torch.zeros(shape, dtype=dt) for shape, dt in self.layout] if grads is None else grads
                self._step_shards([g.detach().cpu() for g in grads])
                self.evaluations += 1
            self._last_loss = loss.detach() if isinstance(loss, torch.Tensor) else loss
            self.save()
            self.cond.notify_all()
            return StepOutcome(self._step, self._last_loss, False)

    def _closure_on_shard(self, step: int, evaluate: Any) -> Any:
        h = self.handles[0]
        answers: list[tuple[Any, Any]] = []
        settings = self._shard_settings()[0]
        try:
            msg = ray.get(h.closure_begin.remote(step, settings))
        except (RayActorError, RayTaskError) as e:
            if isinstance(e, RayTaskError) and not _is_stale(e):
                raise
            self._recover(0, e)
            raise Unavailable(f"session {self.name}: its shard was restarted; retry the step") from None
        try:
            while msg[0] == "eval":
                loss, grads = evaluate(msg[1], msg[2])
                grads = None if grads is None else [g.detach().cpu() for g in grads]
                answers.append((loss, grads))
                msg = ray.get(h.closure_answer.remote(loss, grads))
        except RayActorError as e:
            self._recover(0, e)
            raise Unavailable(f"session {self.name}: its shard was restarted during the step; retry it") from None
        except BaseException:
            try:
                ray.get(h.closure_abort.remote())
            except RayActorError as e:
                self._recover(0, e)
            raise
        if msg[0] == "error":
            raise msg[1]
        if msg[0] != "done":
            raise Unavailable(f"session {self.name}: the step was aborted")
        _, at, loss, params = msg
        if at != step + 1:  # the step had already been taken (a retry after a lost reply)
            return self._last_loss
        self._took_step([params])
        self._log[0].append(("closure", answers, settings))
        self.evaluations += len(answers)
        return loss

    # -- unsupported for OPTIMIZER sessions -----------------------------------------------------------
    def ask(self, *a: Any, **kw: Any) -> Any:  # pragma: no cover - the servicer checks the kind
        raise FailedPrecondition(f"session {self.name} is an optimizer session")

    tell = best_reply = ask

    def close(self, delete: bool = False) -> None:
        with self.cond:
            if not delete and not self.closed and self.failed is None and self.store is not None:
                try:
                    self.save(force=True)
                except Exception as e:
                    log.error("final checkpoint of %s failed: %s", self.name, e)
            self.closed = True
            self.cond.notify_all()
        self._kill()
        if delete and self.store is not None:
            self.store.delete(self.name)
