"""The Ray backend: training sessions as Ray actors (sharded), evaluations as Ray work.

``tz-server --backend ray [--ray-address ADDRESS] [--shards N] [--objective NAME=pkg.mod:fn]``

* OPTIMIZER sessions live in Ray actors: one (unsharded, any chain, closure steps included) or
  ``N`` shards (see :mod:`.sharding` for the plan and for which chains can be split, and
  :mod:`.session` for the coordinator and fault tolerance). The number of shards is the
  server's ``--shards`` unless the session asks for another (``user_attrs["tz.shards"]``,
  ``RemoteOptimizer(..., shards=N)``).
* STUDY sessions (ask/tell) run in the server process, where clients ask and tell; a study
  created with a registered objective (``objective=NAME``) is evaluated by a pool of Ray workers
  (:mod:`.objectives`).
* Shards ask Ray for a GPU (``shard_gpus``) when the session's device is CUDA.

Ray is an optional dependency: importing this package without it raises
:class:`RayBackendUnavailable` with the install hint.
"""
from __future__ import annotations

import logging
import re
import threading
from typing import Any

import torch

from ...errors import InvalidArgument
from ...persistence import Store
from ...sessions.base import build_optimizer
from ...sessions.config import OPTIMIZER, STUDY, SessionConfig
from ...sessions.study import StudySession
from ..base import Backend, SessionHandle, parse_device
from ..registry import SessionRegistry


class RayBackendUnavailable(RuntimeError):
    """Ray is not installed or cannot be reached."""


log = logging.getLogger("tz_server.ray")

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


class RayBackend(Backend):
    """Sessions on a Ray cluster.

    Args:
        device / state_dir / checkpoint_every / checkpoint_interval / ask_timeout / fsync_journal:
            as for :class:`~tz_server.backends.local.LocalBackend`. ``checkpoint_every`` is also
            how often shards are checkpointed in memory for fault tolerance.
        address: a running Ray cluster (``auto``, ``ray://host:10001``, ``host:6379``); None
            starts a local Ray unless this process already initialised one.
        shards: default number of shards of OPTIMIZER sessions.
        objectives: server-side objectives, ``{name: "package.module:function"}``.
        eval_workers: Ray workers per registered objective.
        shard_cpus: CPUs each shard actor reserves (None: Ray's default for actors).
        shard_gpus: GPUs each shard of a CUDA session reserves.
        ray_init: extra ``ray.init`` keyword arguments (``num_cpus``...).
    """

    name = "ray"

    def __init__(self, device: str = "cpu", state_dir: str | None = None, checkpoint_every: int = 1,
                 checkpoint_interval: float = 1.0, ask_timeout: float = 60.0, fsync_journal: bool = False,
                 address: str | None = None, shards: int = 1, objectives: dict[str, str] | None = None,
                 eval_workers: int = 4, shard_cpus: float | None = None, shard_gpus: float = 1,
                 ray_init: dict[str, Any] | None = None):
        try:
            import ray
        except ImportError:
            raise RayBackendUnavailable("the Ray backend needs Ray: pip install 'torchzero-service[ray]'") from None
        from .objectives import resolve
        if int(shards) < 1:
            raise ValueError(f"shards must be >= 1, got {shards}")
        self.store = Store(state_dir, fsync_journal) if state_dir else None  # (its lock first: before Ray starts)
        self._ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            kw = {"include_dashboard": False, "log_to_driver": False, **(ray_init or {})}
            try:
                ray.init(address=address, **kw)
            except Exception as e:
                self._close_store()
                raise RayBackendUnavailable(f"cannot connect to Ray at {address or 'a new local instance'}: {e}") from None
            self._owns_ray = True
        self.shards = int(shards)
        self.shard_cpus = shard_cpus
        self.shard_gpus = shard_gpus
        self.eval_workers = int(eval_workers)
        self.objectives = dict(objectives or {})
        self._functions = {name: resolve(target) for name, target in self.objectives.items()}
        self._evaluators: dict[str, Any] = {}
        self.device = self._device(device)
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        self.ask_timeout = ask_timeout
        self.sessions = SessionRegistry()
        self._lock = threading.Lock()
        if self.store is not None:
            self._restore()

    # -- devices ------------------------------------------------------------------------------------------
    def _device(self, device: str, kind: str = OPTIMIZER) -> str:
        """Validates a device: CUDA for OPTIMIZER sessions against the cluster's GPUs (shards run
        on Ray workers); studies run here, so against this machine."""
        if not _DEVICE.match(device or ""):
            raise InvalidArgument(f"invalid device {device!r}: expected cpu, cuda or cuda:N")
        if kind == STUDY or not device.startswith("cuda"):
            return str(parse_device(device))
        if self._ray.cluster_resources().get("GPU", 0) < min(self.shard_gpus, 1):
            raise InvalidArgument(f"device {device!r} requested but the Ray cluster has no GPU")
        return device

    # -- sessions --------------------------------------------------------------------------------------------
    def _evaluator(self, name: str) -> Any:
        with self._lock:
            ev = self._evaluators.get(name)
            if ev is None:
                from tz_client.ray import RayEvaluator
                ev = self._evaluators[name] = RayEvaluator(self._functions[name], self.eval_workers)
            return ev

    def _make(self, config: SessionConfig, params: list[torch.Tensor], state: dict | None = None,
              journal: Any = ()) -> Any:
        from .objectives import SHARDS, ObjectiveStudy, objective_options
        from .session import FORMAT, RaySession
        if config.kind == STUDY:
            obj = objective_options(config.user_attrs, self.objectives)
            kw = dict(checkpoint_every=1 << 62, checkpoint_interval=self.checkpoint_interval)
            if obj is not None:
                return ObjectiveStudy(config, params, self._evaluator(obj[0]), obj[1], self.store, state, (), **kw)
            return StudySession(config, params, self.store, state, journal, **kw)
        if config.kind != OPTIMIZER:
            raise InvalidArgument(f"unknown session kind {config.kind!r}")
        if config.user_attrs.get("tz.objective") is not None:
            raise InvalidArgument("objective= is for studies")
        if config.pipelined:
            raise InvalidArgument("pipelined sessions need the local backend (Ray sessions step in their actors)")
        if state is not None and state.get("format") == FORMAT:
            return RaySession(self, config, params, state=state)
        # (a checkpoint of the local backend restores unsharded, whatever this server's default)
        shards = config.user_attrs.get(SHARDS, self.shards if state is None else 1)
        if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
            raise InvalidArgument(f"shards must be an integer >= 1, got {shards!r}")
        shards = min(shards, len(params))
        if state is not None:  # a checkpoint of the local backend: one shard with its state
            if shards != 1:
                raise InvalidArgument("a session saved by the local backend restores unsharded")
            init = {"format": FORMAT, "plans": None, "step": state["optimizer"].get("current_step", 0),
                    "shards": [{"params": params, "optimizer": state["optimizer"], "rng": state.get("rng")}],
                    "evaluations": state.get("evaluations", 0),
                    "options": [{k: v for k, v in g.items() if k != "params"} for g in state["optimizer"]["param_groups"]]}
            from .sharding import plan_shards
            init["plans"] = [p.to_state() for p in plan_shards([(tuple(p.shape), p.dtype) for p in params], config.groups, 1)]
            return RaySession(self, config, params, state=init)
        # build the whole chain here first: bad specs and unshardable chains are refused now
        probe = build_optimizer(config, [p.detach().cpu().clone().requires_grad_(True) for p in params])
        if shards > 1:
            from .sharding import check_shardable
            check_shardable(probe.unrolled_modules, config.groups)
        return RaySession(self, config, params, shards=shards)

    def _restored_device(self, config: SessionConfig) -> str:
        return self._device(config.device, config.kind)

    def create(self, config: SessionConfig, params: list[torch.Tensor], exist_ok: bool = False) -> tuple[SessionHandle, bool]:
        config.device = self._device(config.device or self.device, config.kind)
        if not config.ask_timeout or config.ask_timeout <= 0:
            config.ask_timeout = self.ask_timeout
        session, created = self.sessions.create(config, params, exist_ok, lambda: self._make(config, params))
        if not created:
            return session, False
        log.info("created session", extra={"session": config.name, "kind": config.kind, "device": config.device,
                                           "shards": getattr(session, "shards", 0),
                                           "params": sum(p.numel() for p in params)})
        return session, True

    def close(self) -> None:
        sessions = self.sessions.drain()
        with self._lock:
            evaluators = list(self._evaluators.values())
            self._evaluators.clear()
        for s in sessions:
            s.close()
        for ev in evaluators:
            ev.close()
        self._close_store()
        if self._owns_ray:
            self._ray.shutdown()


def make_ray_backend(**options: Any) -> RayBackend:
    """The Ray backend built with ``options`` (see :class:`RayBackend`)."""
    return RayBackend(**options)


__all__ = ["RayBackend", "RayBackendUnavailable", "make_ray_backend"]
