"""The ``tz-server`` command."""
from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
from pathlib import Path

from .logs import setup_logging

BACKENDS = ("local", "ray")
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")

log = logging.getLogger("tz_server")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tz-server", description="Hosts torchzero optimizers behind gRPC.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=50051, help="port (0 picks a free one; default 50051)")
    p.add_argument("--backend", choices=BACKENDS, default="local", help="where sessions run (default local)")
    p.add_argument("--device", default="cpu", help="device of parameters and state: cpu, cuda or cuda:N")
    p.add_argument("--state-dir", help="save sessions here and restore them on start")
    p.add_argument("--token", help="require this token (clients send authorization: Bearer TOKEN)")
    p.add_argument("--token-file", help="read the token from this file")
    p.add_argument("--tls-cert", help="PEM certificate chain; serve TLS (needs --tls-key)")
    p.add_argument("--tls-key", help="PEM private key")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this HTTP port")
    p.add_argument("--max-workers", type=int, default=64, help="RPC threads (default 64)")
    p.add_argument("--ask-timeout", type=float, default=60.0,
                   help="seconds before an unanswered trial is handed out again (default 60)")
    p.add_argument("--checkpoint-every", type=int, default=1, help="save training sessions every N steps (default 1)")
    p.add_argument("--checkpoint-interval", type=float, default=1.0,
                   help="save studies at most every this many seconds (default 1; the tell journal covers the rest)")
    p.add_argument("--fsync-journal", action="store_true", help="fsync the tell journal on every tell")
    p.add_argument("--sync-timeout", type=float, default=300.0,
                   help="seconds the gradient pushes of one data-parallel step wait for missing workers before "
                        "the step is abandoned and the waiting workers get ABORTED (default 300)")
    p.add_argument("--log-format", choices=("json", "text"), default="json")
    p.add_argument("--log-level", default="info")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.log_format, args.log_level)
    token = args.token
    if args.token_file:
        if token:
            print("tz-server: give --token or --token-file, not both", file=sys.stderr)
            return 2
        token = Path(args.token_file).read_text().strip()
    token = token or os.environ.get("TZ_SERVER_TOKEN") or None
    if not _DEVICE.match(args.device):
        print(f"tz-server: invalid device {args.device!r}: expected cpu, cuda or cuda:N", file=sys.stderr)
        return 2
    from .server import ServerOptions, Server
    try:
        server = Server(ServerOptions(
            host=args.host, port=args.port, backend=args.backend, device=args.device, state_dir=args.state_dir,
            token=token, tls_cert=args.tls_cert, tls_key=args.tls_key, metrics_port=args.metrics_port,
            max_workers=args.max_workers, ask_timeout=args.ask_timeout, checkpoint_every=args.checkpoint_every,
            checkpoint_interval=args.checkpoint_interval, fsync_journal=args.fsync_journal,
            sync_timeout=args.sync_timeout)).start()
    except Exception as e:  # bad device, unreadable certificate, port in use...
        print(f"tz-server: {getattr(e, 'message', None) or e}", file=sys.stderr)
        return 2
    print(f"tz-server listening on {server.address}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    log.info("shutting down")
    server.stop(grace=2.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
