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
    p.add_argument("--max-workers", type=int, default=64,
                   help="RPC threads (default 64); at most half serve long-lived ask/tell streams")
    p.add_argument("--stream-idle-timeout", type=float, default=30.0,
                   help="end ask/tell streams idle for this many seconds, freeing their thread (default 30)")
    p.add_argument("--ask-timeout", type=float, default=60.0,
                   help="seconds before an unanswered trial is handed out again (default 60)")
    p.add_argument("--checkpoint-every", type=int, default=1, help="save training sessions every N steps (default 1)")
    p.add_argument("--checkpoint-interval", type=float, default=1.0,
                   help="save studies at most every this many seconds (default 1; the tell journal covers the rest)")
    p.add_argument("--piece-bytes", type=int, default=4 << 20,
                   help="sessions created with pipelined=True step their gradient pushes in pieces of this many "
                        "bytes as they arrive, overlapping upload, step and download (default 4 MiB; 0: never; "
                        "local backend)")
    p.add_argument("--fsync-journal", action="store_true", help="fsync the tell journal on every tell")
    p.add_argument("--cpus", help="run the server on these CPUs only, e.g. 0, 0-3 or 0,2 (Linux; default: all); "
                                  "on small hosts, keeping clients off the server's CPUs raises ask/tell throughput")
    p.add_argument("--sync-timeout", type=float, default=300.0,
                   help="seconds the gradient pushes of one data-parallel step wait for missing workers before "
                        "the step is abandoned and the waiting workers get ABORTED (default 300)")
    ray = p.add_argument_group("Ray backend (--backend ray)")
    ray.add_argument("--ray-address", help="Ray cluster to join (auto, host:6379, ray://host:10001); "
                     "default: start a local Ray")
    ray.add_argument("--shards", type=int, help="split optimizer sessions across N Ray actors (default 1)")
    ray.add_argument("--objective", action="append", default=[], metavar="NAME=package.module:function",
                     help="register a server-side objective that studies created with objective=NAME are "
                          "evaluated with by Ray workers (repeatable)")
    ray.add_argument("--eval-workers", type=int, help="Ray workers per registered objective (default 4)")
    ray.add_argument("--shard-cpus", type=float, help="CPUs each shard actor reserves (default: Ray's default)")
    ray.add_argument("--ray-num-cpus", type=int, help="CPUs of the local Ray started without --ray-address")
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
    try:
        ray_options = _ray_options(args)
    except ValueError as e:
        print(f"tz-server: {e}", file=sys.stderr)
        return 2
    if args.cpus is not None:
        from .affinity import parse_cpus, pin_to_cpus
        try:
            pin_to_cpus(parse_cpus(args.cpus))
        except ValueError as e:
            print(f"tz-server: {e}", file=sys.stderr)
            return 2
    from .server import ServerOptions, Server
    try:
        server = Server(ServerOptions(
            host=args.host, port=args.port, backend=args.backend, device=args.device, state_dir=args.state_dir,
            token=token, tls_cert=args.tls_cert, tls_key=args.tls_key, metrics_port=args.metrics_port,
            max_workers=args.max_workers, stream_idle_timeout=args.stream_idle_timeout, ask_timeout=args.ask_timeout, checkpoint_every=args.checkpoint_every,
            checkpoint_interval=args.checkpoint_interval, fsync_journal=args.fsync_journal, ray=ray_options,
            sync_timeout=args.sync_timeout, piece_bytes=args.piece_bytes)).start()
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


def _ray_options(args: argparse.Namespace) -> dict:
    """The Ray backend's options from the command line (an error if given without it)."""
    given = {k: v for k, v in (("--ray-address", args.ray_address), ("--shards", args.shards),
                               ("--eval-workers", args.eval_workers), ("--shard-cpus", args.shard_cpus),
                               ("--ray-num-cpus", args.ray_num_cpus), ("--objective", args.objective or None))
             if v is not None}
    if args.backend != "ray":
        if given:
            raise ValueError(f"{', '.join(given)} need(s) --backend ray")
        return {}
    out: dict = {}
    if args.ray_address:
        out["address"] = args.ray_address
    if args.shards is not None:
        if args.shards < 1:
            raise ValueError("--shards must be >= 1")
        out["shards"] = args.shards
    if args.eval_workers is not None:
        out["eval_workers"] = args.eval_workers
    if args.shard_cpus is not None:
        out["shard_cpus"] = args.shard_cpus
    if args.ray_num_cpus is not None:
        out["ray_init"] = {"num_cpus": args.ray_num_cpus}
    if args.objective:
        from .backends.ray.objectives import parse_objective, resolve
        objectives = dict(parse_objective(o) for o in args.objective)
        for target in objectives.values():  # fail before starting Ray
            resolve(target)
        out["objectives"] = objectives
    return out


if __name__ == "__main__":
    sys.exit(main())
