"""The torchzero gRPC service: hosted sessions, backends, persistence, the ``tz-server`` command.

``tz_server.serve()`` starts an embedded server in this process (notebooks, tests, the demo)::

    with tz_server.serve() as srv:
        client = tz_client.Client(srv.address)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import Server, ServerOptions, serve

__all__ = ["Server", "ServerOptions", "serve"]


def __getattr__(name: str) -> Any:
    # imported on first use, so that `tz-server --help` and its argument errors answer at once
    if name in __all__:
        from . import server
        return getattr(server, name)
    raise AttributeError(f"module 'tz_server' has no attribute {name!r}")
