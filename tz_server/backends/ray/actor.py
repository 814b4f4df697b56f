"""The shard actor: one part of a session's parameters and optimizer state, on its own device.

A shard is stepped by its coordinator (:class:`~tz_server.backends.ray.session.RaySession`):

* ``push(step, grads, settings)``: the gradients of its tensors for step ``step``; exactly once (a retried
  step returns the parameters without stepping again); a shard that is not at ``step`` (Ray
  restarted it and it lost its state) raises :class:`StaleShard`, and the coordinator restores it;
* ``closure_begin(step, settings)`` / ``closure_answer`` / ``closure_abort`` (unsharded sessions only): a step
  whose modules evaluate the objective anywhere. The step runs on a thread of the actor; every
  evaluation it needs comes back to the coordinator as a request, which forwards it to the
  client and answers with the result;
* ``state`` / ``restore`` / ``replay``: checkpoints, and the steps taken since the last one.

``settings`` (:func:`~tz_server.backends.ray.sharding.shard_settings`: the options of each of the
shard's groups, its frozen positions) are applied before the step; the log keeps them with it.
"""
from __future__ import annotations

import copy
import queue
import threading
from typing import Any

import torch

from ...rng import RngOwner
from ...sessions.base import build_optimizer
from ...sessions.config import SessionConfig
from ...sessions.trainer import RemoteClosure, freeze
from .sharding import ShardPlan


class StaleShard(RuntimeError):
    """The shard is not at the step it is asked to take (it was restarted)."""

    def __init__(self, at: int, wanted: int):
        super().__init__(f"shard is at step {at}, asked for step {wanted}")
        self.at = at
        self.wanted = wanted

    def __reduce__(self) -> Any:
        return (StaleShard, (self.at, self.wanted))


class _Abort(Exception):
    pass


_ABORT = object()


class ShardActor:
    """Holds ``plan``'s tensors and the optimizer over them (see the module docstring).

    Args:
        config_state: the session's :class:`SessionConfig` as a plain dict.
        plan_state: the shard's :class:`ShardPlan` as a plain dict.
        init: the shard's state: ``params`` (real tensors then stand-ins, CPU), optionally
            ``optimizer`` (a state dict) and ``rng``.
        device: ``cpu`` or ``cuda`` (the GPU Ray gave this actor).
    """

    def __init__(self, config_state: dict[str, Any], plan_state: dict[str, Any], init: dict[str, Any], device: str = "cpu"):
        self.config = SessionConfig.from_state(config_state)
        self.plan = ShardPlan.from_state(plan_state)
        self.device = torch.device(device)
        self.config.device = str(self.device)
        self.config.groups = self.plan.groups
        self._closure: dict[str, Any] | None = None
        self._settings: tuple | None = None  # the last settings applied (None: apply the next ones)
        self._load(init)

    # -- state ------------------------------------------------------------------------------------
    def _load(self, st: dict[str, Any]) -> None:
        self._settings = None
        self.params = [t.detach().to(self.device).clone().requires_grad_(True) for t in st["params"]]
        self.real = len(self.plan.indices)
        self.opt = build_optimizer(self.config, self.params)
        if st.get("optimizer") is not None:
            self.opt.load_state_dict(st["optimizer"])
        self.rng = RngOwner(self.device, self.config.seed, st.get("rng"))

    def state(self) -> dict[str, Any]:
        """A checkpoint: tensors and plain values (``torch.load(weights_only=True)`` safe)."""
        return {"params": [p.detach().cpu().clone() for p in self.params], "optimizer": _cpu(self.opt.state_dict()),
                "rng": self.rng.state(), "step": self.opt.current_step}

    def restore(self, st: dict[str, Any], log: list[tuple] = ()) -> int:
        """Loads a checkpoint, then replays the steps taken since (``log``); returns the step."""
        self._closure = None
        self._load(st)
        for entry in log:
            self._replay(entry)
        return self.opt.current_step

    def step_count(self) -> int:
        return self.opt.current_step

    def ping(self) -> bool:
        return True

    def _out(self) -> list[torch.Tensor]:
        return [p.detach().cpu() for p in self.params[:self.real]]

    # -- gradient steps --------------------------------------------------------------------------------
    def _settle(self, settings: tuple | None) -> None:
        """Applies the groups' options and the frozen positions of a step (when they changed)."""
        if settings is None or settings == self._settings:
            return
        options, frozen = settings
        for g, opts in zip(self.opt.param_groups, options):
            g.set_options(opts)
        freeze(self.params, frozen)
        self._settings = settings

    def push(self, step: int, grads: list[torch.Tensor], settings: tuple | None = None) -> list[torch.Tensor]:
        at = self.opt.current_step
        if at == step + 1:
            return self._out()
        if at != step:
            raise StaleShard(at, step)
        self._settle(settings)
        self._apply(grads)
        return self._out()

    def _apply(self, grads: list[torch.Tensor]) -> None:
        try:
            for p, g in zip(self.params, grads):
                p.grad = g.to(device=self.device, dtype=p.dtype)
            for p in self.params[len(grads):]:  # stand-ins
                p.grad = torch.zeros_like(p)
            with self.rng.owned():
                self.opt.step()
        finally:
            for p in self.params:
                p.grad = None

    def _replay(self, entry: tuple) -> None:
        kind = entry[0]
        self._settle(entry[2])
        if kind == "push":
            self._apply(entry[1])
        elif kind == "closure":
            answers = list(entry[1])

            def fn(point: Any, backward: bool) -> tuple[Any, Any]:
                loss, grads = answers.pop(0)
                return loss, None if grads is None else [g.to(self.device) for g in grads]

            try:
                with self.rng.owned():
                    self.opt.step(RemoteClosure(fn, self.params, self.rng))
            finally:
                for p in self.params:
                    p.grad = None
        else:  # pragma: no cover - written by the coordinator
            raise ValueError(f"unknown log entry {kind!r}")

    # -- closure steps (one shard) ---------------------------------------------------------------------
    def closure_begin(self, step: int, settings: tuple | None = None) -> tuple:
        """Starts a step whose evaluations come back as ``("eval", point or None, backward)``
        messages; the step ends with ``("done", step, loss, params)`` or ``("error", exception)``."""
        at = self.opt.current_step
        if at == step + 1:
            return ("done", at, None, self._out())
        if at != step:
            raise StaleShard(at, step)
        if self._closure is not None:
            self.closure_abort()
        self._settle(settings)
        outbox: queue.Queue = queue.Queue()
        inbox: queue.Queue = queue.Queue()
        saved = (copy.deepcopy(self.opt.state_dict()), [p.detach().clone() for p in self.params], self.rng.state())

        def fn(point: list[torch.Tensor] | None, backward: bool) -> tuple[Any, Any]:
            outbox.put(("eval", None if point is None else [t.detach().cpu() for t in point], backward))
            msg = inbox.get()
            if msg is _ABORT:
                raise _Abort()
            loss, grads = msg
            return loss, None if grads is None else [g.to(self.device) for g in grads]

        def run() -> None:
            try:
                with self.rng.owned():
                    loss = self.opt.step(RemoteClosure(fn, self.params, self.rng))
                loss = loss.detach().cpu() if isinstance(loss, torch.Tensor) else loss
                outbox.put(("done", self.opt.current_step, loss, self._out()))
            except BaseException as e:  # rolled back below, reported to the coordinator
                self._rollback(saved)
                outbox.put(("aborted",) if isinstance(e, _Abort) else ("error", e))
            finally:
                for p in self.params:
                    p.grad = None

        thread = threading.Thread(target=run, name="tz-shard-closure", daemon=True)
        self._closure = {"outbox": outbox, "inbox": inbox, "thread": thread}
        thread.start()
        return self._next()

    def closure_answer(self, loss: Any, grads: list[torch.Tensor] | None) -> tuple:
        if self._closure is None:
            raise RuntimeError("no closure step in progress")
        self._closure["inbox"].put((loss, grads))
        return self._next()

    def closure_abort(self) -> None:
        c = self._closure
        if c is None:
            return
        c["inbox"].put(_ABORT)
        c["thread"].join(30)
        self._closure = None

    def _next(self) -> tuple:
        assert self._closure is not None
        msg = self._closure["outbox"].get()
        if msg[0] != "eval":
            self._closure["thread"].join(30)
            self._closure = None
        return msg

    def _rollback(self, saved: tuple) -> None:
        sd, params, rng = saved
        with torch.no_grad():
            for p, s in zip(self.params, params):
                p.copy_(s)
        self.opt.load_state_dict(sd)
        self.rng = RngOwner(self.device, self.config.seed, rng)
        self._settings = None  # (the options are the saved ones again)


def _cpu(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().clone() if v.device.type != "cpu" else v.detach().clone()
    if isinstance(v, dict):
        return {k: _cpu(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_cpu(x) for x in v]
    if isinstance(v, tuple):
        return tuple(_cpu(x) for x in v)
    return v
