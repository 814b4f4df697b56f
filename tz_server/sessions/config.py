"""What defines a session: everything ``CreateSession`` carries except the parameters' values."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

STUDY = "study"
OPTIMIZER = "optimizer"


@dataclass
class SessionConfig:
    """Plain, picklable description of a session (a backend may ship it to another process).

    Attributes:
        name: the session's name.
        kind: :data:`STUDY` (ask/tell) or :data:`OPTIMIZER` (stepped by training workers).
        modules: module specs (``torchzero.to_spec`` dicts), applied in order.
        groups: parameter groups: ``{"params": [indices], "options": {key: spec-encoded value}}``;
            empty for a single group.
        device: where parameters and state live.
        workers: gradient pushes averaged per step (OPTIMIZER).
        seed: seeds the global RNG the session's modules draw from.
        lower / upper: bounds on every point handed out (STUDY): None, a float, or one tensor per
            parameter.
        ask_timeout: seconds before an unanswered trial is handed out again.
        allow_nonfinite: accept non-finite losses and gradients.
        user_attrs: free-form JSON-like values kept for clients.
        token_hash: SHA-256 (hex) of the session's own token: every call on the session must carry
            the token (see :mod:`tz_server.auth`); None for sessions guarded by the server token only.
        sync_timeout: seconds the gradient pushes of one step (``workers > 1``) wait for the missing
            ranks before the step is aborted (nothing applied) and the waiting workers get ABORTED.
        pipelined: OPTIMIZER sessions with one worker and an element-wise chain step each piece of
            a push as soon as it has arrived (:mod:`tz_server.sessions.pieces`).
    """

    name: str
    kind: str
    modules: list[dict[str, Any]]
    groups: list[dict[str, Any]] = field(default_factory=list)
    device: str = "cpu"
    workers: int = 1
    seed: int | None = None
    lower: float | list[torch.Tensor] | None = None
    upper: float | list[torch.Tensor] | None = None
    ask_timeout: float = 60.0
    allow_nonfinite: bool = False
    user_attrs: dict[str, Any] = field(default_factory=dict)
    token_hash: str | None = None
    sync_timeout: float = 300.0
    pipelined: bool = False

    def to_state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> "SessionConfig":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def group_indices(config: SessionConfig, count: int) -> list[list[int]]:
    """The parameter indices of each of the session's parameter groups (one group of all
    ``count`` parameters when it has none)."""
    return [[int(i) for i in g["params"]] for g in config.groups] if config.groups else [list(range(count))]
