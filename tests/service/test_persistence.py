"""A tz-server killed with SIGKILL and restarted on the same state directory serves every session
again; clients retrying their last call continue without losing or repeating a step."""
from __future__ import annotations

import os
import socket
import subprocess
import threading

import pytest
import torch

import torchzero as tz
import tz_client
import tz_server
from tz_client import RemoteOptimizer
from tz_client._proto.torchzero_service.v1 import service_pb2 as pb
from tz_client.codec import iter_chunks, layout_of

from tz_server.persistence import StateDirInUse
from tzsvc_support import ServerProcess, assert_same, free_port, tz_server_command


def quad(x: torch.Tensor) -> torch.Tensor:
    return ((x - 1) ** 2).sum()


def grad_of(x: torch.Tensor) -> torch.Tensor:
    return 2 * (x - 1)


def local_study_points(x0: torch.Tensor, n: int) -> list[torch.Tensor]:
    x = x0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], tz.m.Adam(), tz.m.LR(0.1))
    points = []
    for _ in range(n):
        points.append(x.detach().clone())
        x.grad = grad_of(x.detach())
        opt.step()
    return points


def push_raw(client: tz_client.Client, session: str, step: int, grad: torch.Tensor) -> pb.StepDone:
    """One gradient push, by hand (a worker whose reply gets lost retries exactly this)."""
    reqs = [pb.StepRequest(start=pb.StepStart(session=session, step=step, mode=pb.PUSH, grads=layout_of([grad]))),
            *iter_chunks([grad])]
    replies = list(client.conn.stub.Step(iter(reqs)))
    return replies[0].done


@pytest.mark.slow
def test_sigkill_and_restart(tmp_path):
    port = free_port()
    state = str(tmp_path / "state")
    proc = ServerProcess("--state-dir", state, port=port)
    try:
        client = tz_client.Client(proc.address, client_id="c1", retry_timeout=60)
        x0 = torch.tensor([0.5, -1.0, 2.0])
        expected = local_study_points(x0, 12)
        study = client.create_study("study", x0, [tz.m.Adam(), tz.m.LR(0.1)])
        for k in range(5):
            t = study.ask()
            assert t.id == f"{k}:0"
            assert_same([t.params], [expected[k]])
            study.tell(t, float(quad(t.params)), grad_of(t.params))
        held = study.ask()          # handed out, not told yet when the server dies

        p = torch.nn.Parameter(torch.linspace(-1, 1, 6))
        opt = RemoteOptimizer([p], tz.m.Adam(), tz.m.LR(0.05), address=proc.address, session="train")
        lp = torch.nn.Parameter(torch.linspace(-1, 1, 6))
        local = tz.Optimizer([lp], tz.m.Adam(), tz.m.LR(0.05))
        grads = [torch.randn(6, generator=torch.Generator().manual_seed(s)) for s in range(8)]
        for s in range(3):
            p.grad, lp.grad = grads[s].clone(), grads[s].clone()
            opt.step()
            local.step()
        # step 3 is applied, but its reply is "lost": the worker will retry it after the restart
        done = push_raw(client, "train", 3, grads[3])
        assert done.step == 4 and not done.replayed
        lp.grad = grads[3].clone()
        local.step()

        proc.kill()
        proc = ServerProcess("--state-dir", state, port=port)

        names = {s.name for s in client.list_sessions()}
        assert {"study", "train"} <= names
        # the study: the held trial comes back and the trajectory goes on exactly
        study2 = tz_client.Client(proc.address, client_id="c1").open_study("study")
        assert study2.ask().id == held.id
        assert study.tell(held, float(quad(held.params)), grad_of(held.params))[0] == 1
        assert study.tell(held, float(quad(held.params)), grad_of(held.params)) == (0, 1)  # a retried tell
        for k in range(6, 12):
            t = study.ask()
            assert t.id == f"{k}:0"
            assert_same([t.params], [expected[k]])
            study.tell(t, float(quad(t.params)), grad_of(t.params))
        # the optimizer: the retried step is not applied twice
        again = push_raw(client, "train", 3, grads[3])
        assert again.replayed and again.step == 4
        opt.pull()
        assert_same([p], [lp])
        for s in range(4, 8):
            p.grad, lp.grad = grads[s].clone(), grads[s].clone()
            opt.step()
            local.step()
        assert_same([p], [lp])
        assert opt.current_step == 8
    finally:
        proc.stop()


@pytest.mark.slow
def test_call_in_flight_during_a_kill_is_retried(tmp_path):
    """Rank 0 of a two-worker session waits inside its push when the server dies; its client
    retries through the restart and the step happens once, with both gradients."""
    port = free_port()
    state = str(tmp_path / "state")
    proc = ServerProcess("--state-dir", state, port=port)
    try:
        ps = [torch.nn.Parameter(torch.zeros(3)) for _ in range(2)]
        opts = [RemoteOptimizer([ps[r]], tz.m.LR(1.0), address=proc.address, session="dp", workers=2, rank=r)
                for r in range(2)]
        ps[0].grad = torch.tensor([1.0, 2.0, 3.0])
        ps[1].grad = torch.tensor([3.0, 2.0, 1.0])
        errors = []

        def rank0() -> None:
            try:
                opts[0].step()
            except Exception as e:
                errors.append(e)

        th = threading.Thread(target=rank0)
        th.start()
        th.join(1.0)
        assert th.is_alive()        # waiting for rank 1
        proc.kill()
        proc = ServerProcess("--state-dir", state, port=port)
        opts[1].step()
        th.join(60)
        assert not errors and not th.is_alive()
        for r in range(2):
            assert ps[r].tolist() == [-2.0, -2.0, -2.0] and opts[r].current_step == 1
    finally:
        proc.stop()


def test_a_state_directory_serves_one_server_at_a_time(tmp_path):
    """A second server given a state directory in use refuses to start (naming the holder) instead
    of writing over the first one's checkpoints; the directory is free again once the first stops,
    is killed, or fails to start."""
    state = str(tmp_path / "state")
    with tz_server.serve(state_dir=state) as srv:
        p = torch.nn.Parameter(torch.zeros(2))
        opt = RemoteOptimizer([p], tz.m.LR(0.5), address=srv.address, session="held")
        p.grad = torch.ones(2)
        opt.step()
        with tz_client.Client(srv.address) as c:  # (a study: restored with a thread that keeps its server alive)
            c.create_study("study-held", torch.zeros(2), [tz.m.SPSA(), tz.m.LR(0.1)])
        with pytest.raises(StateDirInUse, match=f"in use by another server \\(pid {os.getpid()} on "):
            tz_server.serve(state_dir=state)
        second = subprocess.run([*tz_server_command(), "--port", "0", "--state-dir", state], capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 2 and "is in use by another server" in second.stderr
        opt.close()
    proc = ServerProcess("--state-dir", state)  # free again after a stop
    try:
        with pytest.raises(StateDirInUse, match=f"pid {proc.proc.pid} "):
            tz_server.serve(state_dir=state)
    finally:
        proc.kill()  # the lock goes with the process, however it ends
    with pytest.raises(RuntimeError, match="bind"):  # a server that cannot start (port taken) releases it
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            tz_server.serve(state_dir=state, port=s.getsockname()[1])
    with tz_server.serve(state_dir=state) as srv:
        assert srv.backend.get("held").step == 1  # and nothing was lost
