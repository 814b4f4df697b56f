"""What every hosted session has: the optimizer, its parameters on the session's device, a lock."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import torch

import torchzero as tz
from torchzero.core.spec import decode as decode_value, encode, setting_problem

from ..errors import InvalidArgument
from ..persistence import Store, WriteGuard
from ..rng import RngOwner
from ..validation import check_floating_point
from .config import SessionConfig

log = logging.getLogger("tz_server.session")

FORMAT = "tz-session/1"


def decode_options(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """The options of a parameter group, rebuilt from their spec values (registry only)."""
    try:
        options = {k: decode_value(v, f"{where}.{k}") for k, v in raw.items()}
    except ValueError as e:
        raise InvalidArgument(str(e)) from None
    if "params" in options:
        raise InvalidArgument(f"{where}: 'params' is not an option")
    return options


def describe_groups(indices: list[list[int]], options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parameter groups as :class:`~tz_server.sessions.config.SessionConfig` keeps them (options as
    spec values), e.g. for ``SessionInfo``."""
    return [{"params": idx, "options": {k: encode(v, k) for k, v in opts.items()}} for idx, opts in zip(indices, options)]


def check_group_options(modules: list[Any], options: list[dict[str, Any]], allow_nan: bool = False) -> None:
    """Raises :class:`InvalidArgument` for a group option a module of the chain cannot take (a
    string or a list where it needs a number, e.g. ``lr="abc"``), refused before the step instead
    of failing the session at it; and for a NaN unless ``allow_nan`` (the session's
    ``allow_nonfinite``), which would turn the parameters into NaN."""
    for gi, opts in enumerate(options):
        for key, value in opts.items():
            if not allow_nan and isinstance(value, float) and value != value:
                raise InvalidArgument(f"groups[{gi}].{key}: nan (this session refuses non-finite values)")
            for m in modules:
                why = setting_problem(m, key, value) if key in m.defaults else None
                if why:
                    raise InvalidArgument(f"groups[{gi}].{key}: {why} ({type(m).__name__}.{key})")


def build_optimizer(config: SessionConfig, params: list[torch.Tensor]) -> tz.Optimizer:
    """Rebuilds the modules from their specs (registry only) and the parameter groups."""
    try:
        modules = [tz.from_spec(s) for s in config.modules]
    except NotImplementedError as e:
        raise InvalidArgument(f"module not available on this server: {e}") from None
    except ValueError as e:  # SpecError
        raise InvalidArgument(f"bad module spec: {e}") from None
    if not modules:
        raise InvalidArgument("a session needs at least one module")
    if not config.groups:
        groups: Any = params
    else:
        seen: set[int] = set()
        groups = []
        for gi, g in enumerate(config.groups):
            idx = [int(i) for i in g["params"]]
            for i in idx:
                if not 0 <= i < len(params) or i in seen:
                    raise InvalidArgument(f"groups[{gi}]: bad or repeated parameter index {i}")
                seen.add(i)
            groups.append({"params": [params[i] for i in idx], **decode_options(g.get("options", {}), f"groups[{gi}]")})
        if len(seen) != len(params):
            raise InvalidArgument(f"parameter groups cover {len(seen)} of {len(params)} parameters")
    try:
        opt = tz.Optimizer(groups, *modules)
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"cannot build the optimizer: {e}") from None
    check_group_options(opt.unrolled_modules, [g.options() for g in opt.param_groups], config.allow_nonfinite)
    return opt


class Session:
    """One hosted ``tz.Optimizer``.

    ``lock`` guards the optimizer, parameters and counters; ``cond`` (on the same lock) wakes
    whoever waits for a change. Subclasses add a way of driving steps.
    """

    def __init__(self, config: SessionConfig, params: list[torch.Tensor], store: Store | None = None,
                 state: dict[str, Any] | None = None, checkpoint_every: int = 1, checkpoint_interval: float = 1.0):
        self.config = config
        self.name = config.name
        self.device = torch.device(config.device)
        check_floating_point([p.dtype for p in params])  # (before requires_grad_, which refuses integer tensors itself)
        self.params = [p.detach().to(self.device).clone().requires_grad_(True) for p in params]
        self.layout = [(tuple(p.shape), p.dtype) for p in self.params]
        self.opt = build_optimizer(config, self.params)
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.store = store
        self.writes = WriteGuard(self.name)
        self.checkpoint_every = max(1, int(checkpoint_every))
        self.checkpoint_interval = checkpoint_interval
        self.evaluations = 0
        self.closed = False
        self.failed: str | None = None
        self.finished = False
        self._last_save = time.monotonic()
        self._saved_step = -1
        rng_state = None
        if state is not None:
            try:
                self.opt.load_state_dict(state["optimizer"])
            except (KeyError, ValueError, TypeError) as e:
                raise InvalidArgument(f"cannot restore session {self.name}: {e}") from None
            self.evaluations = int(state.get("evaluations", 0))
            self.finished = bool(state.get("finished", False))
            rng_state = state.get("rng")
            self._saved_step = self.step
        self.rng = RngOwner(self.device, config.seed, rng_state)

    # -- basics ---------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def step(self) -> int:
        return self.opt.current_step

    def status(self) -> str:
        if self.failed:
            return f"failed: {self.failed}"
        return "finished" if self.finished else "running"

    def best_loss(self) -> float | None:
        return None

    def params_snapshot(self) -> list[torch.Tensor]:
        with self.lock:
            return [p.detach().clone() for p in self.params]

    # -- persistence -----------------------------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Any]:
        """Everything needed to rebuild the session (tensors and plain values; call between steps)."""
        return {
            "format": FORMAT,
            "config": self.config.to_state(),
            "params": [p.detach().cpu() for p in self.params],
            "optimizer": self.opt.state_dict(),
            "evaluations": self.evaluations,
            "finished": self.finished,
            "rng": self.rng.state(),
        }

    def save(self, force: bool = False) -> bool:
        """Writes a checkpoint when due (every ``checkpoint_every`` steps / ``checkpoint_interval`` s);
        returns whether one was written (a failed write is recorded in ``self.writes`` and retried
        when the next one is due)."""
        if self.store is None or self.closed:
            return False
        due = force or self.step - self._saved_step >= self.checkpoint_every or (
            time.monotonic() - self._last_save >= self.checkpoint_interval and self.step != self._saved_step)
        if not due:
            return False
        state, store = self.checkpoint_state(), self.store
        if not self.writes.run("checkpoint", lambda: store.save(self.name, state)):
            return False
        self._saved_step = self.step
        self._last_save = time.monotonic()
        return True

    def close(self, delete: bool = False) -> None:
        """Stops the session, waking every waiter; with ``delete`` its files are removed.

        Subclasses write a last checkpoint first when their state is consistent.
        """
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        if delete and self.store is not None:
            self.store.delete(self.name)
