"""Sessions in this process, one lock each (the default backend)."""
from __future__ import annotations

import logging
from typing import Any

import torch

from ..errors import InvalidArgument
from ..persistence import Store
from ..sessions.config import OPTIMIZER, STUDY, SessionConfig
from ..sessions.study import StudySession
from ..sessions.trainer import TrainSession
from .base import Backend, SessionHandle, parse_device
from .registry import SessionRegistry

log = logging.getLogger("tz_server.backend")


class LocalBackend(Backend):
    """Keeps sessions in this process.

    Args:
        device: the default device of new sessions.
        state_dir: where sessions are saved and restored from (None: in memory only).
        checkpoint_every: training sessions are saved every this many steps.
        checkpoint_interval: studies are saved at most this often (seconds); the tell journal covers
            the steps in between.
        ask_timeout: default seconds before an unanswered trial is handed out again.
        fsync_journal: fsync the tell journal on every tell (survives power loss, not only a crash).
        piece_bytes: pushes to sessions created with ``pipelined=True`` are stepped in pieces of about
            this many bytes while they arrive (see :mod:`tz_server.sessions.pieces`); 0 turns it off.
    """

    name = "local"

    def __init__(self, device: str = "cpu", state_dir: str | None = None, checkpoint_every: int = 1,
                 checkpoint_interval: float = 1.0, ask_timeout: float = 60.0, fsync_journal: bool = False,
                 piece_bytes: int = 4 << 20):
        self.device = str(parse_device(device))
        self.store = Store(state_dir, fsync_journal) if state_dir else None
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        self.ask_timeout = ask_timeout
        self.piece_bytes = piece_bytes
        self.sessions = SessionRegistry()
        if self.store is not None:
            self._restore()

    def _make(self, config: SessionConfig, params: list[torch.Tensor], state: dict | None = None,
              journal: Any = ()) -> Any:
        if config.kind == STUDY:
            return StudySession(config, params, self.store, state, journal, checkpoint_every=1 << 62,
                                checkpoint_interval=self.checkpoint_interval)
        if config.kind == OPTIMIZER:
            return TrainSession(config, params, self.store, state, checkpoint_every=self.checkpoint_every,
                                checkpoint_interval=self.checkpoint_interval, piece_bytes=self.piece_bytes)
        raise InvalidArgument(f"unknown session kind {config.kind!r}")

    def create(self, config: SessionConfig, params: list[torch.Tensor], exist_ok: bool = False) -> tuple[SessionHandle, bool]:
        config.device = str(parse_device(config.device or self.device))
        # options only the Ray backend implements are refused, not ignored
        if config.user_attrs.get("tz.objective") is not None:
            raise InvalidArgument("server-side objectives (objective=...) need tz-server --backend ray")
        if config.user_attrs.get("tz.shards", 1) != 1:
            raise InvalidArgument("shards > 1 needs tz-server --backend ray")
        if not config.ask_timeout or config.ask_timeout <= 0:
            config.ask_timeout = self.ask_timeout
        session, created = self.sessions.create(config, params, exist_ok, lambda: self._make(config, params))
        if not created:
            return session, False
        log.info("created session", extra={"session": config.name, "kind": config.kind, "device": config.device,
                                           "params": sum(p.numel() for p in params)})
        return session, True

    def close(self) -> None:
        for s in self.sessions.drain():
            s.close()
        self._close_store()
