"""Transport benchmark: RemoteOptimizer.step() against a raw gRPC stream echoing the same bytes.

One step of a hosted ``Adam -> LR`` on N float32 parameters (10M by default) over loopback: the
gradients go up, the server steps, the new parameters come down. The baseline, measured in the
same run, is a bare gRPC bidirectional stream (bytes in, the same bytes out, no protobuf, no
torch) that moves the same number of bytes in chunks of the same size, served by its own process.
Both servers run in their own processes (``--embedded`` puts tz-server in this one).

    .venv/bin/python benchmarks/transport.py [--quick] [--params N] [--repeats R]

Target (issue 4): RemoteOptimizer.step at most 1.25x the raw echo.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import grpc  # noqa: E402

from tz_client.codec import CHUNK_BYTES  # noqa: E402
from tz_client.wire import CHANNEL_OPTIONS  # noqa: E402

ECHO = "/bench.Echo/Echo"


def echo_server() -> None:
    """Runs the raw echo server; prints its port."""
    def echo(request_iterator, context):
        for chunk in request_iterator:
            yield chunk

    handler = grpc.method_handlers_generic_handler("bench.Echo", {
        "Echo": grpc.stream_stream_rpc_method_handler(echo, request_deserializer=None, response_serializer=None)})
    server = grpc.server(ThreadPoolExecutor(64), options=CHANNEL_OPTIONS)  # (as many RPC threads as tz-server)
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


def start(cmd: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "listening on" in line:
            return proc, line.rsplit("listening on", 1)[1].strip()
    raise RuntimeError(f"{cmd} did not start")


def median_ms(fn, repeats: int) -> float:
    fn()  # warm up
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--params", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--embedded", action="store_true", help="run tz-server in this process")
    ap.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.echo_server:
        echo_server()
        return
    import torch

    import torchzero as tz
    from common import table
    from tz_client import RemoteOptimizer

    repeats = args.repeats or (5 if args.quick else 20)
    n = args.params
    procs = []
    echo_proc, echo_addr = start([sys.executable, __file__, "--echo-server"])
    procs.append(echo_proc)
    embedded = None
    if args.embedded:
        import tz_server
        embedded = tz_server.serve()
        tz_addr = embedded.address
    else:
        tz_proc, tz_addr = start([sys.executable, "-m", "tz_server.cli", "--port", "0", "--log-level", "warning"])
        procs.append(tz_proc)
    try:
        torch.manual_seed(0)
        p = torch.nn.Parameter(torch.randn(n))
        grad = torch.randn(n)
        opt = RemoteOptimizer([p], tz.m.Adam(), tz.m.LR(1e-3), address=tz_addr)
        p2 = torch.nn.Parameter(p.detach().clone())
        piped = RemoteOptimizer([p2], tz.m.Adam(), tz.m.LR(1e-3), address=tz_addr, pipelined=True)

        def remote_step() -> None:
            p.grad = grad
            opt.step()

        def pipelined_step() -> None:
            p2.grad = grad
            piped.step()

        # the raw baseline: the same bytes, the same chunking, echoed back
        raw = grad.numpy().tobytes()
        chunks = [raw[i:i + CHUNK_BYTES] for i in range(0, len(raw), CHUNK_BYTES)]
        channel = grpc.insecure_channel(echo_addr, options=CHANNEL_OPTIONS)
        call = channel.stream_stream(ECHO, request_serializer=None, response_deserializer=None)
        out = bytearray(len(raw))

        def raw_echo() -> None:
            pos = 0
            for c in call(iter(chunks)):
                out[pos:pos + len(c)] = c
                pos += len(c)
            assert pos == len(raw)

        local_p = torch.nn.Parameter(torch.randn(n))
        local = tz.Optimizer([local_p], tz.m.Adam(), tz.m.LR(1e-3))

        def local_step() -> None:
            local_p.grad = grad
            local.step()

        times: dict[str, list[float]] = {"remote": [], "pipelined": [], "raw": [], "local": []}
        fns = {"remote": remote_step, "pipelined": pipelined_step, "raw": raw_echo, "local": local_step}
        for fn in fns.values():
            fn()
        for _ in range(repeats):  # interleaved, so machine noise hits all alike
            for k, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        mb = n * 4 / 1e6
        rows = [
            ["RemoteOptimizer.step (Adam, push + step + pull)", f"{med['remote']:.1f}", f"{2 * mb / med['remote']:.2f}",
             f"{med['remote'] / med['raw']:.2f}x"],
            ["RemoteOptimizer.step, pipelined=True (pieces stepped as they arrive)", f"{med['pipelined']:.1f}",
             f"{2 * mb / med['pipelined']:.2f}", f"{med['pipelined'] / med['raw']:.2f}x"],
            ["raw gRPC echo of the same bytes", f"{med['raw']:.1f}", f"{2 * mb / med['raw']:.2f}", "1.00x"],
            ["local tz.Optimizer.step (Adam, same size)", f"{med['local']:.1f}", "-", f"{med['local'] / med['raw']:.2f}x"],
        ]
        print(f"transport: {n:,} float32 parameters ({mb:.0f} MB each way), chunks of {CHUNK_BYTES >> 20} MiB, "
              f"median of {repeats}, tz-server {'embedded' if embedded else 'in its own process'}, {os.cpu_count()} CPUs")
        print(table(rows, ["what", "ms", "GB/s (both ways)", "vs raw echo"]))
        best = min(med["remote"], med["pipelined"])
        print(f"target: RemoteOptimizer.step <= 1.25x raw echo -> {'met' if best <= 1.25 * med['raw'] else 'NOT met'}"
              f" ({med['remote'] / med['raw']:.2f}x, pipelined {med['pipelined'] / med['raw']:.2f}x)")
        assert torch.equal(p, p2), "pipelined and whole steps must agree bit for bit"
        opt.delete_session()
        piped.delete_session()
        channel.close()
    finally:
        if embedded is not None:
            embedded.stop()
        for pr in procs:
            pr.terminate()
            pr.wait()


if __name__ == "__main__":
    main()
