"""Ask/tell benchmark: evaluations per second and latency of a hosted 10-dimensional study,
against Optuna (in memory and through its gRPC storage proxy) and Nevergrad, in the same run.

Rows (the objective is a cheap quadratic, so the figures measure the service, not the function):
  * the floor and the ceiling, same run: round trips per second of a raw gRPC stream echoing a
    small message (no protobuf, no torch: the most any one-trial-per-round-trip client can do),
    with the CPU time a round trip costs each process (gRPC's Python runtime alone),
    and a study driven in process without gRPC (the session and optimizer alone);
  * one client, one trial per ask, SPSA (2 points per step), embedded server and server process:
    strictly one round trip per evaluation (the tell and the next ask in one message), and with
    ``prefetch=1`` + ``tell(wait=False)`` (the step's second trial is held by the client and the
    two tells ride with the next ask: one round trip per step);
  * one client, batch asks of 16 (RandomizedFDM with 8 samples: 16 points per step);
  * the prefetch and batch rows again with the server pinned to one CPU (``tz-server --cpus``) and
    the client process to the others (on hosts with 2 or more CPUs);
  * the raw echo with 1 and 16 client processes, each sleeping 1 ms before every round trip (what
    gRPC alone does with many clients);
  * 1 / 4 / 16 client processes sharing one study whose steps have 16 points (each process asks
    for its share), with a simulated evaluation cost (--eval-ms, default 1 and 10 ms), and the
    server process's CPU time per evaluation;
  * p50 latency of one ask + one tell after 100 and after 100,000 evaluations (--quick: 10,000);
  * Optuna ask/tell in memory and through ``optuna.storages.GrpcStorageProxy`` (RandomSampler),
    Nevergrad SPSA ask/tell in process.

    .venv/bin/python benchmarks/ask_tell.py [--quick] [--seconds S]

Targets (issue 4): >= 2,000 evals/s for one client over loopback, >= 10,000/s with batch asks of
16; throughput rises with client processes; latency does not grow with history.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DIM = 10


def objective(x):  # works for tensors and numpy arrays
    return float(((x - 0.5) ** 2).sum())


def modules(kind: str):
    import torchzero as tz
    if kind == "spsa":
        return [tz.m.SPSA(), tz.m.LR(1e-3)]
    return [tz.m.RandomizedFDM(n_samples=8), tz.m.LR(1e-3)]


def tz_loop(address: str, study_name: str, batch: int, seconds: float, client_id: str | None = None,
            eval_ms: float = 0.0, ready=None, prefetch: int = 0) -> int:
    """Asks / evaluates / tells for ``seconds``; returns evaluations. With ``prefetch`` one trial
    per ask and unwaited tells; otherwise a tell and the next ask of ``batch`` in one round trip."""
    import tz_client
    client = tz_client.Client(address, client_id=client_id)
    study = client.open_study(study_name, prefetch=prefetch)
    if ready is not None:
        ready()
    n = 0
    end = time.perf_counter() + seconds
    if prefetch:
        while time.perf_counter() < end:
            t = study.ask()
            study.tell(t, objective(t.params), wait=False)
            n += 1
        client.close()  # sends the last tells
        return n
    trials = study.ask(n=batch)
    while True:
        if eval_ms:
            time.sleep(eval_ms * len(trials) / 1e3)
        losses = [objective(t.params) for t in trials]
        n += len(trials)
        if time.perf_counter() >= end:
            study.tell(trials, losses)
            break
        trials = study.tell_and_ask(trials, losses, n=batch)
        while not trials:
            trials = study.ask(n=batch)
    client.close()
    return n


def _client_proc(address: str, study_name: str, batch: int, seconds: float, eval_ms: float, start, ready, out) -> None:
    def wait_for_start() -> None:
        ready.put(1)
        start.wait()
    out.put(tz_loop(address, study_name, batch, seconds, f"proc-{os.getpid()}", eval_ms, wait_for_start))


def _pinned_proc(cpus: set[int], out, *args) -> None:
    os.sched_setaffinity(0, cpus)  # before grpc and torch start any thread
    import torch
    torch.set_num_threads(len(cpus))
    out.put(tz_loop(*args))


def pinned_loop(cpus: set[int], address: str, study_name: str, batch: int, seconds: float, prefetch: int) -> int:
    """``tz_loop`` in a new client process restricted to ``cpus``; returns its evaluations."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    p = ctx.Process(target=_pinned_proc, args=(cpus, out, address, study_name, batch, seconds, None, 0.0, None, prefetch))
    p.start()
    n = out.get(timeout=600)
    p.join()
    return n


def tz_processes(address: str, study_name: str, n_procs: int, batch: int, seconds: float,
                 eval_ms: float, server=None) -> tuple[float, float]:
    """Evaluations per second of ``n_procs`` client processes on one study (each asks ``batch``),
    and the CPU time (user + system) of the ``server`` process (psutil) per evaluation, in us."""
    ctx = mp.get_context("spawn")
    start, ready, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_client_proc, args=(address, study_name, batch, seconds, eval_ms, start, ready, out))
             for _ in range(n_procs)]
    for p in procs:
        p.start()
    for _ in procs:  # every process imported and connected
        ready.get(timeout=600)
    cpu0 = sum(server.cpu_times()[:2]) if server is not None else 0.0
    t0 = time.perf_counter()
    start.set()
    total = sum(out.get(timeout=600) for _ in procs)
    took = time.perf_counter() - t0
    cpu = sum(server.cpu_times()[:2]) - cpu0 if server is not None else float("nan")
    for p in procs:
        p.join()
    return total / took, cpu / total * 1e6


def latency_p50(study, pairs: int) -> float:
    samples = []
    for _ in range(pairs):
        t0 = time.perf_counter()
        t = study.ask()
        study.tell(t, objective(t.params))
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


class _EchoStream:
    """A bidirectional stream to the echo server of benchmarks/transport.py (200-byte messages)."""

    def __init__(self, address: str, warm_up: int = 200):
        import queue

        import grpc
        from transport import ECHO
        self.channel = grpc.insecure_channel(address)
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()

        def requests():
            while (m := self.outbox.get()) is not None:
                yield m
        self.replies = iter(self.channel.stream_stream(ECHO, request_serializer=None,
                                                       response_deserializer=None)(requests()))
        self.msg = b"x" * 200
        for _ in range(warm_up):
            self.roundtrip()

    def roundtrip(self) -> None:
        self.outbox.put(self.msg)
        next(self.replies)

    def run(self, seconds: float, sleep_ms: float = 0.0) -> int:
        """Round trips for ``seconds`` (sleeping ``sleep_ms`` before each); returns how many."""
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            if sleep_ms:
                time.sleep(sleep_ms / 1e3)
            self.roundtrip()
            n += 1
        return n

    def close(self) -> None:
        self.outbox.put(None)
        self.channel.close()


def _start_echo_server():
    from transport import start
    return start([sys.executable, str(Path(__file__).with_name("transport.py")), "--echo-server"])


def raw_echo_rate(seconds: float) -> tuple[float, float, float]:
    """Round trips per second of a bare gRPC bidirectional stream echoing 200 bytes (its own server
    process, the echo server of benchmarks/transport.py), and the CPU time (user + system) one
    round trip costs the server and the client process, in microseconds."""
    import psutil
    proc, address = _start_echo_server()
    try:
        server = psutil.Process(proc.pid)
        stream = _EchoStream(address)
        s0, c0, t0 = sum(server.cpu_times()[:2]), time.process_time(), time.perf_counter()
        n = stream.run(seconds)
        rate = n / (time.perf_counter() - t0)
        s_cpu, c_cpu = sum(server.cpu_times()[:2]) - s0, time.process_time() - c0
        stream.close()
        return rate, s_cpu / n * 1e6, c_cpu / n * 1e6
    finally:
        proc.terminate()
        proc.wait()


def _echo_proc(address: str, seconds: float, sleep_ms: float, start, ready, out) -> None:
    stream = _EchoStream(address, warm_up=50)
    ready.put(1)
    start.wait()
    n = stream.run(seconds, sleep_ms)
    stream.close()
    out.put(n)


def raw_echo_processes(n_procs: int, seconds: float, sleep_ms: float) -> tuple[float, float]:
    """Round trips per second of ``n_procs`` client processes, each sleeping ``sleep_ms`` before
    every round trip on its own echo stream (the echo server of benchmarks/transport.py), and the
    server process's CPU time per round trip (us): what gRPC alone does with that many clients."""
    import psutil
    proc, address = _start_echo_server()
    try:
        server = psutil.Process(proc.pid)
        ctx = mp.get_context("spawn")
        start, ready, out = ctx.Event(), ctx.Queue(), ctx.Queue()
        procs = [ctx.Process(target=_echo_proc, args=(address, seconds, sleep_ms, start, ready, out))
                 for _ in range(n_procs)]
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=600)
        cpu0, t0 = sum(server.cpu_times()[:2]), time.perf_counter()
        start.set()
        total = sum(out.get(timeout=600) for _ in procs)
        took, cpu = time.perf_counter() - t0, sum(server.cpu_times()[:2]) - cpu0
        for p in procs:
            p.join()
        return total / took, cpu / total * 1e6
    finally:
        proc.terminate()
        proc.wait()


def in_process_rate(kind: str, batch: int, seconds: float) -> float:
    """Evaluations per second of a study driven by direct calls on its session (no gRPC)."""
    import torch

    import tz_server
    from tz_client import Client
    from tz_client._proto.torchzero_service.v1 import service_pb2 as pb
    from tz_client.codec import from_proto, loss_to_proto
    with tz_server.serve() as srv:
        c = Client(srv.address)
        c.create_study("direct", torch.zeros(DIM), modules(kind), seed=0)
        s = srv.backend.get("direct")
        rep = s.ask("bench", batch, 5.0)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            items = [pb.TellItem(id=t.id, loss=loss_to_proto(objective(from_proto(t.params[0])))) for t in rep.trials]
            n += len(items)
            s.tell(items)
            rep = s.ask("bench", batch, 5.0)
        rate = n / (time.perf_counter() - t0)
        c.close()
    return rate


def advance(study, target: int, batch: int = 16) -> None:
    """Tells trials until the study has ``target`` evaluations."""
    while study.info().evaluations < target:
        trials = study.ask(n=batch)
        for _ in range(50):
            trials = study.tell_and_ask(trials, [objective(t.params) for t in trials], n=batch)
        study.tell(trials, [objective(t.params) for t in trials])


# -- baselines ----------------------------------------------------------------------------------
def optuna_loop(storage, seconds: float) -> float:
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    import numpy as np
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        trial = study.ask()
        x = np.array([trial.suggest_float(f"x{i}", -5, 5) for i in range(DIM)])
        study.tell(trial, objective(x))
        n += 1
    return n / (time.perf_counter() - t0)


def optuna_proxy_server() -> None:
    import optuna
    from optuna.storages import InMemoryStorage, run_grpc_proxy_server
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    port = int(sys.argv[sys.argv.index("--optuna-proxy") + 1])
    run_grpc_proxy_server(InMemoryStorage(), host="127.0.0.1", port=port)


def nevergrad_loop(seconds: float) -> float:
    import nevergrad as ng
    opt = ng.optimizers.SPSA(parametrization=DIM, budget=10 ** 9)
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        cand = opt.ask()
        opt.tell(cand, objective(cand.value))
        n += 1
    return n / (time.perf_counter() - t0)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_tz_server(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tz_server.cli", "--port", "0", "--log-level", "warning", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "listening on" in line:
            return proc, line.rsplit("listening on", 1)[1].strip()
    raise RuntimeError("tz-server did not start")


def main() -> None:
    if "--optuna-proxy" in sys.argv:
        optuna_proxy_server()
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs; latency after 10,000 instead of 100,000 evals")
    ap.add_argument("--seconds", type=float, default=None, help="length of each throughput run")
    ap.add_argument("--clients", default="1,4,16", help="client process counts")
    ap.add_argument("--eval-ms", default="1,10",
                    help="simulated costs of one evaluation in the client-process rows (ms, default 1,10)")
    args = ap.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 10.0)
    late = 10_000 if args.quick else 100_000

    import torch

    import tz_client
    import tz_server
    from common import table

    rows: list[list[str]] = []

    def row(what: str, value: float, unit: str = "evals/s", note: str = "") -> None:
        rows.append([what, f"{value:,.0f}" if unit == "evals/s" else f"{value:.3f}", unit, note])
        print(f"  {what}: {rows[-1][1]} {unit} {note}", flush=True)

    echo, echo_server_us, echo_client_us = raw_echo_rate(seconds)
    row("raw gRPC stream echo (200 B), round trips/s: the one-round-trip ceiling", echo, note="floor")
    row("raw gRPC stream echo: CPU per round trip, server process", echo_server_us, "us")
    row("raw gRPC stream echo: CPU per round trip, client process", echo_client_us, "us")
    row("tz study driven in process, no gRPC, 1 trial per call, SPSA", in_process_rate("spsa", 1, seconds))
    row("tz study driven in process, no gRPC, batches of 16, RFDM(8)", in_process_rate("rfdm", 16, seconds))

    x0 = torch.zeros(DIM)
    proc, address = start_tz_server()
    try:
        for where in ("embedded server", "server process, loopback"):
            # (the embedded server is stopped before the loopback rows: its idle threads would
            # otherwise share the client process)
            embedded = tz_server.serve() if where == "embedded server" else None
            addr = embedded.address if embedded is not None else address
            c = tz_client.Client(addr)
            for kind, batch, prefetch, label in (
                    ("spsa", 1, 0, "1 trial per ask, SPSA, a round trip per evaluation"),
                    ("spsa", 1, 1, "1 trial per ask, SPSA, prefetch=1 + tell(wait=False)"),
                    ("rfdm", 16, 0, "batch asks of 16, RFDM(8)")):
                name = f"bench-{kind}-{batch}-{prefetch}"
                c.create_study(name, x0, modules(kind), seed=0)
                tz_loop(addr, name, batch, 0.3, prefetch=prefetch)  # warm up
                n = tz_loop(addr, name, batch, seconds, prefetch=prefetch)
                row(f"tz, {where}, 1 client, {label}", n / seconds)
            c.close()
            if embedded is not None:
                embedded.stop()

        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if len(cpus) >= 2:  # the server on one CPU, the client on the others
            pproc, paddr = start_tz_server("--cpus", str(cpus[0]))
            try:
                c = tz_client.Client(paddr)
                for kind, batch, prefetch, label in (
                        ("spsa", 1, 1, "1 trial per ask, SPSA, prefetch=1 + tell(wait=False)"),
                        ("rfdm", 16, 0, "batch asks of 16, RFDM(8)")):
                    name = f"bench-pinned-{kind}-{batch}"
                    c.create_study(name, x0, modules(kind), seed=0)
                    pinned_loop(set(cpus[1:]), paddr, name, batch, 0.3, prefetch)  # warm up
                    n = pinned_loop(set(cpus[1:]), paddr, name, batch, seconds, prefetch)
                    row(f"tz, server process pinned (--cpus {cpus[0]}), client on the other CPU(s), 1 client, {label}",
                        n / seconds)
                c.close()
            finally:
                pproc.terminate()
                pproc.wait()

        for n_procs in (1, 16):
            rate, cpu = raw_echo_processes(n_procs, seconds, 1.0)
            row(f"raw gRPC stream echo, {n_procs} client process(es), each sleeping 1 ms before a round trip",
                rate, "evals/s", f"server CPU {cpu:.0f} us/round trip")

        import psutil
        server = psutil.Process(proc.pid)
        c = tz_client.Client(address)
        for eval_ms in [float(v) for v in args.eval_ms.split(",")]:
            for n_procs in [int(v) for v in args.clients.split(",")]:
                name = f"bench-procs-{n_procs}-{eval_ms:g}"
                c.create_study(name, x0, modules("rfdm"), seed=0)
                share = max(1, -(-16 // n_procs))  # the 16 points of a step, shared out
                rate, cpu = tz_processes(address, name, n_procs, share, seconds, eval_ms, server)
                row(f"tz, server process, {n_procs} client process(es), RFDM(8), asks of {share}, "
                    f"{eval_ms:g} ms per evaluation", rate, note=f"server CPU {cpu:.0f} us/eval")

        study = c.create_study("bench-latency", x0, modules("rfdm"), seed=0)
        advance(study, 100)
        p_early = latency_p50(study, 200)
        advance(study, late)
        p_late = latency_p50(study, 200)
        row("tz, p50 ask + tell latency after 100 evals", p_early, "ms")
        row(f"tz, p50 ask + tell latency after {late:,} evals", p_late, "ms", f"({p_late / p_early:.2f}x)")
        c.close()

        row("Optuna in memory (RandomSampler)", optuna_loop(None, seconds))
        port = free_port()
        oproc = subprocess.Popen([sys.executable, __file__, "--optuna-proxy", str(port)], cwd=REPO,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            from optuna.storages import GrpcStorageProxy
            time.sleep(3.0)
            storage = GrpcStorageProxy(host="127.0.0.1", port=port)
            storage.wait_server_ready(timeout=60) if hasattr(storage, "wait_server_ready") else None
            row("Optuna via GrpcStorageProxy (RandomSampler), loopback", optuna_loop(storage, seconds))
        finally:
            oproc.terminate()
            oproc.wait()
        row("Nevergrad SPSA in process", nevergrad_loop(seconds))
    finally:
        proc.terminate()
        proc.wait()
    print()
    print(f"ask/tell on a {DIM}-dimensional study, {seconds:g} s per throughput run, {os.cpu_count()} CPUs")
    print(table(rows, ["what", "value", "unit", "note"]))


if __name__ == "__main__":
    main()
