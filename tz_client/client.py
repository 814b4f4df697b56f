"""The :class:`Client`: a connection to a tz-server and its sessions."""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from . import specs
from ._proto.torchzero_service.v1 import service_pb2 as pb
from .channel import Connection
from .checks import integer
from .codec import to_proto
from .sessions import SessionInfo, create_session, session_metadata
from .study import Study


class Client:
    """A connection to a torchzero server.

    Args:
        address: ``host:port`` of the server.
        token: the server's token, if it needs one.
        client_id: identifies this client to studies (trials it holds come back to it after a
            reconnect); random by default.
        tls / root_certificates: connect with TLS (``root_certificates``: PEM bytes or a path).
        retry_timeout: seconds calls keep retrying while the server is unreachable.
    """

    def __init__(self, address: str, token: str | None = None, *, client_id: str | None = None, tls: bool = False,
                 root_certificates: bytes | str | Path | None = None, retry_timeout: float = 60.0):
        self.conn = Connection(address, token, tls=tls, root_certificates=root_certificates, retry_timeout=retry_timeout)
        self.address = address
        self.client_id = client_id or uuid.uuid4().hex

    # -- studies ---------------------------------------------------------------------------------
    def create_study(self, name: str, x0: torch.Tensor | Sequence[torch.Tensor], modules: Sequence[Any], *,
                     lower: Any = None, upper: Any = None, seed: int | None = None, exist_ok: bool = False,
                     ask_timeout: float | None = None, allow_nonfinite: bool = False, device: str | None = None,
                     objective: str | None = None, max_evals: int | None = None,
                     session_token: str | None = None, prefetch: int = 0) -> Study:
        """Creates a study (ask/tell) whose optimizer is ``tz.Optimizer(x0, *modules)`` on the server.

        Args:
            name: the study's name (letters, digits, ``.``, ``_``, ``-``).
            x0: the starting point: a tensor, or a list of tensors.
            modules: torchzero module objects, as for ``tz.Optimizer``; their specs are sent.
            lower / upper: bounds on every point handed out: a number, or tensors like ``x0``.
            seed: seeds the random numbers the modules draw (the same as ``torch.manual_seed(seed)``
                before a local run).
            exist_ok: return the existing study of that name instead of failing.
            ask_timeout: seconds before a trial nobody told is handed out again.
            allow_nonfinite: accept inf / nan losses.
            device: where the server keeps the study (default: the server's device).
            objective / max_evals: evaluate the study on the server with the objective the operator
                registered under this name (``tz-server --backend ray --objective NAME=...``), by Ray
                workers, until ``max_evals`` evaluations; watch it with ``info()`` and ``best()``.
            session_token: the study's own token: every call on it then needs this token (on top
                of the server's); others cannot open, ask, tell or delete it.
            prefetch: trials an ask fetches beyond those asked for, held by this client and handed
                out by its next asks (fewer round trips when evaluations are cheap; see :class:`Study`).
        """
        if prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch}")
        is_list = not isinstance(x0, torch.Tensor)
        params = [torch.as_tensor(t) for t in x0] if is_list else [x0]
        header = pb.CreateHeader(name=name, kind=pb.STUDY, modules=specs.modules_to_proto(modules), exist_ok=exist_ok,
                                 ask_timeout=ask_timeout or 0.0, allow_nonfinite=allow_nonfinite, device=device or "",
                                 user_attrs=specs.to_map(_study_attrs(is_list, objective, max_evals)),
                                 session_token=session_token or "")
        if seed is not None:
            header.seed = integer(seed, "seed")
        for which, b in (("lower", lower), ("upper", upper)):
            if b is None:
                continue
            msg = getattr(header, which)
            if isinstance(b, (int, float)):
                msg.scalar = float(b)
            else:
                ts = [torch.as_tensor(t) for t in b] if is_list else [torch.as_tensor(b)]
                ts = [t.to(p.dtype) for t, p in zip(ts, params)]
                msg.tensors.tensors.extend(to_proto(t) for t in ts)
        info = create_session(self.conn, header, params, session_metadata(self.conn, session_token))
        return Study(self, SessionInfo.from_proto(info), session_token=session_token, prefetch=prefetch)

    def open_study(self, name: str, session_token: str | None = None, *, prefetch: int = 0) -> Study:
        """The existing study called ``name`` (``session_token``: its own token, if it has one;
        ``prefetch``: as for :meth:`create_study`)."""
        info = self.session(name, session_token)
        if info.kind != "study":
            raise ValueError(f"session {name!r} is a {info.kind} session, not a study")
        return Study(self, info, session_token=session_token, prefetch=prefetch)

    # -- sessions --------------------------------------------------------------------------------
    def session(self, name: str, session_token: str | None = None) -> SessionInfo:
        md = session_metadata(self.conn, session_token)
        return SessionInfo.from_proto(self.conn.call(lambda: self.conn.stub.GetSession(
            pb.SessionRef(name=name), metadata=md)))

    def list_sessions(self) -> list[SessionInfo]:
        rep = self.conn.call(lambda: self.conn.stub.ListSessions(pb.ListRequest(), metadata=self.conn.metadata))
        return [SessionInfo.from_proto(s) for s in rep.sessions]

    def delete(self, name: str, session_token: str | None = None) -> bool:
        """Deletes a session and its saved state; False if there was none."""
        md = session_metadata(self.conn, session_token)
        rep = self.conn.call(lambda: self.conn.stub.DeleteSession(pb.SessionRef(name=name), metadata=md))
        return rep.deleted

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.address!r})"


def _study_attrs(is_list: bool, objective: str | None, max_evals: int | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"x0_is_list": is_list}
    if objective is not None:  # read by the Ray backend (tz_server.backends.ray.objectives)
        if max_evals is None:
            raise ValueError("a study with a server-side objective needs max_evals")
        attrs.update({"tz.objective": str(objective), "tz.max_evals": int(max_evals)})
    elif max_evals is not None:
        raise ValueError("max_evals is for studies with a server-side objective")
    return attrs
