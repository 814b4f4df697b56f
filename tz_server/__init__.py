"""The torchzero gRPC service: hosted sessions, backends, persistence, the ``tz-server`` command.

``tz_server.serve()`` starts an embedded server in this process (notebooks, tests, the demo)::

    with tz_server.serve() as srv:
        client = tz_client.Client(srv.address)
"""
from .server import Server, ServerOptions, serve

__all__ = ["Server", "ServerOptions", "serve"]
