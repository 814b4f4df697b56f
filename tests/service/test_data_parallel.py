"""Synchronous data parallel: a worker that never pushes (dead, hung) does not leave the others
waiting forever; the step is abandoned whole and can be retried."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch

import torchzero as tz
import tz_client
import tz_server
from tz_client import Aborted, RemoteOptimizer

from tzsvc_support import REPO, ServerProcess


def _push_all(opts, params, grads) -> list:
    """Every optimizer pushes its gradients for one step at once (threads); returns the errors."""
    errors: list = [None] * len(opts)

    def run(i: int) -> None:
        params[i].grad = grads[i].clone()
        try:
            opts[i].step()
        except Exception as e:
            errors[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(opts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a worker is still waiting"
    return errors


def test_abort_message_of_a_session_with_very_many_workers(deployment, name):
    """The sync-timeout message lists a few missing ranks and counts the rest (it does not walk or
    print two billion ranks)."""
    p = torch.nn.Parameter(torch.zeros(2))
    opt = RemoteOptimizer([p], tz.m.LR(0.1), address=deployment.address, session=name, workers=2**31 - 1,
                          rank=5, sync_timeout=0.5)
    p.grad = torch.ones(2)
    t0 = time.monotonic()
    with pytest.raises(Aborted) as e:
        opt.step()
    assert time.monotonic() - t0 < 30
    assert "rank(s) [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, ...] (2147483646 in all)" in e.value.details
    assert "received from rank(s) [5])" in e.value.details and len(e.value.details) < 500
    assert opt.delete_session()


def test_missing_worker_aborts_the_step(deployment, name):
    """Ranks 0 and 1 push, rank 2 never does: both get ABORTED naming rank 2, nothing is applied,
    and the retried step (with all three) equals the local average of the retried gradients."""
    n = 3
    params = [torch.nn.Parameter(torch.linspace(-1, 1, 4)) for _ in range(n)]
    opts = [RemoteOptimizer([params[r]], tz.m.Adam(), tz.m.LR(0.1), address=deployment.address, session=name,
                            workers=n, rank=r, sync_timeout=1.0) for r in range(n)]
    first = [torch.full((4,), 100.0 * (r + 1)) for r in range(n)]
    t0 = time.monotonic()
    errors = _push_all(opts[:2], params[:2], first[:2])
    took = time.monotonic() - t0
    for e in errors:
        assert isinstance(e, Aborted), e
        assert "rank(s) [2]" in e.details and "not applied" in e.details
    assert 0.9 <= took < 30
    for r in range(n):
        assert opts[r].current_step == 0
        opts[r].pull()
        assert torch.equal(params[r].detach(), torch.linspace(-1, 1, 4))
    # retry with every worker (different gradients: nothing of the abandoned round may remain)
    second = [torch.randn(4, generator=torch.Generator().manual_seed(r)) for r in range(n)]
    assert _push_all(opts, params, second) == [None] * n
    local_p = torch.nn.Parameter(torch.linspace(-1, 1, 4))
    local = tz.Optimizer([local_p], tz.m.Adam(), tz.m.LR(0.1))
    local_p.grad = torch.stack(second).sum(0).div_(n)
    local.step()
    for r in range(n):
        assert opts[r].current_step == 1
        assert torch.equal(params[r].detach(), local_p.detach())
    assert opts[0].delete_session()
    for o in opts:
        o.close()


WORKER = textwrap.dedent("""
    import sys, time, torch
    import torchzero as tz
    from tz_client import RemoteOptimizer
    p = torch.nn.Parameter(torch.zeros(4))
    opt = RemoteOptimizer([p], tz.m.LR(1.0), address=sys.argv[1], session=sys.argv[2], workers=2, rank=1)
    print("joined", flush=True)
    time.sleep(600)  # killed before it ever pushes
""")


@pytest.mark.parametrize("where", ["embedded", "subprocess"])
def test_killed_worker_process(where, name):
    """A real worker process joins and is SIGKILLed; the server's --sync-timeout ends rank 0's wait."""
    if where == "embedded":
        srv = tz_server.serve(sync_timeout=1.0)
        address, stop = srv.address, srv.stop
    else:
        proc = ServerProcess("--sync-timeout", "1")
        address, stop = proc.address, proc.stop
    try:
        p = torch.nn.Parameter(torch.zeros(4))
        opt = RemoteOptimizer([p], tz.m.LR(1.0), address=address, session=name, workers=2, rank=0)
        worker = subprocess.Popen([sys.executable, "-c", WORKER, address, name], cwd=REPO, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            assert worker.stdout.readline().strip() == "joined", worker.stderr.read()
        finally:
            worker.kill()
            worker.wait(10)
        p.grad = torch.ones(4)
        t0 = time.monotonic()
        with pytest.raises(Aborted, match=r"rank\(s\) \[1\]"):
            opt.step()
        assert time.monotonic() - t0 < 30
        assert opt.current_step == 0 and torch.equal(p.detach(), torch.zeros(4))
        # a replacement worker takes rank 1 over; the retried step goes through
        q = torch.nn.Parameter(torch.zeros(4))
        other = RemoteOptimizer([q], tz.m.LR(1.0), address=address, session=name, workers=2, rank=1)
        assert _push_all([opt, other], [p, q], [torch.ones(4), 3 * torch.ones(4)]) == [None, None]
        assert p.tolist() == q.tolist() == [-2.0] * 4
        assert opt.current_step == other.current_step == 1
        opt.close()
        other.close()
    finally:
        stop()


def test_sync_timeout_is_validated():
    with pytest.raises(ValueError, match="sync_timeout"):
        tz_server.serve(sync_timeout=0)
    with tz_server.serve() as srv:
        p = torch.nn.Parameter(torch.zeros(2))
        with pytest.raises(tz_client.InvalidArgument, match="sync_timeout"):
            RemoteOptimizer([p], tz.m.LR(1.0), address=srv.address, workers=2, sync_timeout=float("inf"))
