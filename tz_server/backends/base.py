"""The backend interface: where sessions live and how the service reaches them.

The servicer (:mod:`tz_server.servicer`) speaks gRPC and validates input; a backend owns the
sessions. :class:`~tz_server.backends.local.LocalBackend` keeps them in this process; a Ray
backend keeps them in Ray actors. Both hand out objects with the :class:`SessionHandle` methods.
"""
from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from typing import Any, Protocol

import torch

from tz_client._proto.torchzero_service.v1 import service_pb2 as pb

from ..errors import InvalidArgument
from ..persistence import Store, WriteGuard
from ..sessions.config import SessionConfig
from .registry import SessionRegistry

log = logging.getLogger("tz_server.backend")


class SessionHandle(Protocol):
    """What the servicer needs from a session (see the local sessions for the semantics)."""

    name: str
    config: SessionConfig
    layout: list[tuple[tuple[int, ...], torch.dtype]]
    params: list[torch.Tensor]
    evaluations: int
    writes: WriteGuard  # its checkpoint and journal writes (a failure is recorded, not raised)

    @property
    def kind(self) -> str: ...
    @property
    def step(self) -> int: ...
    def status(self) -> str: ...
    def best_loss(self) -> float | None: ...
    def params_snapshot(self) -> list[torch.Tensor]: ...
    # STUDY
    def ask(self, client_id: str, n: int = 1, wait: float = 0.0, resume: bool = False, spare: int = 0) -> pb.AskReply: ...
    def tell(self, items: Any) -> tuple[int, int]: ...
    def release(self, client_id: str, ids: Any) -> int: ...
    def best_reply(self) -> pb.BestReply: ...
    # OPTIMIZER
    def push(self, step: int, rank: int, grads: list[torch.Tensor], loss: Any = None) -> Any: ...
    def closure_step(self, step: int, evaluate: Any) -> Any: ...
    def group_indices(self) -> list[list[int]]: ...
    def current_groups(self) -> list[dict[str, Any]]: ...
    def set_group_options(self, options: list[dict[str, Any]]) -> list[dict[str, Any]]: ...
    def set_frozen(self, frozen: list[int]) -> list[int]: ...


class Backend(ABC):
    """Creates, finds and deletes sessions, kept in ``self.sessions`` (a
    :class:`~tz_server.backends.registry.SessionRegistry`)."""

    name = "abstract"
    sessions: SessionRegistry
    store: Store | None = None

    @abstractmethod
    def _make(self, config: SessionConfig, params: list[torch.Tensor], state: dict | None = None,
              journal: Any = ()) -> SessionHandle:
        """A session of ``config`` (restored from ``state`` and ``journal`` when given)."""

    def _restored_device(self, config: SessionConfig) -> str:
        """Where a restored session lives (its saved device, checked against this machine)."""
        return str(parse_device(config.device))

    def _restore(self) -> None:
        """Serves every session of the state directory again; the store sets aside those that
        cannot be rebuilt."""
        assert self.store is not None

        def build(name: str, state: dict[str, Any], journal: list[Any]) -> None:
            config = SessionConfig.from_state(state["config"])
            config.device = self._restored_device(config)
            session = self._make(config, state["params"], state, journal)
            self.sessions.add(name, session)
            log.info("restored session", extra={"session": name, "step": session.step, "replay": len(journal)})
        self.store.restore(build)

    def _close_store(self) -> None:
        """Releases the state directory (after the sessions' last checkpoints)."""
        if self.store is not None:
            self.store.close()

    @abstractmethod
    def create(self, config: SessionConfig, params: list[torch.Tensor], exist_ok: bool = False) -> tuple[SessionHandle, bool]:
        """The new session (and True), or with ``exist_ok`` a compatible existing one (and False)."""

    def get(self, name: str) -> SessionHandle:
        """The session called ``name``; raises :class:`~tz_server.errors.NotFound`."""
        return self.sessions.get(name)

    def list(self) -> list[SessionHandle]:
        """Every session."""
        return self.sessions.list()

    def delete(self, name: str) -> bool:
        """Deletes a session (and its saved state); False if there was none."""
        s = self.sessions.pop(name)
        if s is None:
            return False
        s.close(delete=True)
        log.info("deleted session", extra={"session": name})
        return True

    @abstractmethod
    def close(self) -> None:
        """Stops every session (writing final checkpoints where it can)."""


_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


def parse_device(device: str) -> torch.device:
    """Validates ``cpu``, ``cuda`` or ``cuda:N`` against what this machine has."""
    if not _DEVICE.match(device or ""):
        raise InvalidArgument(f"invalid device {device!r}: expected cpu, cuda or cuda:N")
    d = torch.device(device)
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidArgument(f"device {device!r} requested but CUDA is not available on this server")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise InvalidArgument(f"device {device!r}: this server has {torch.cuda.device_count()} CUDA device(s)")
    return d
