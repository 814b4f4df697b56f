"""A checkpoint or journal write that fails (here: a session's folder replaced by a plain file, a
real failing write) does not fail the session: it goes on in memory, SessionInfo.persist_error and
the metrics say what is wrong, the write is retried, and once it works again a restarted server
continues from the latest step."""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import urllib.request

import pytest
import torch

import torchzero as tz
import tz_client
import tz_server
from tz_client import RemoteOptimizer

BACKENDS = ["local"] + (["ray"] if importlib.util.find_spec("ray") is not None else [])


def break_folder(state: str, name: str) -> str:
    folder = os.path.join(state, "sessions", name)
    shutil.rmtree(folder)
    with open(folder, "w") as f:
        f.write("a file where the session's folder was")
    return folder


def metric(srv: tz_server.Server, name: str, kind: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{srv.metrics_port}/metrics", timeout=5).read().decode()
    line = next(x for x in text.splitlines() if x.startswith(f'{name}{{kind="{kind}"}}'))
    return float(line.split()[-1])


@pytest.mark.parametrize("backend", [pytest.param(b, marks=[pytest.mark.ray] if b == "ray" else []) for b in BACKENDS])
def test_failed_writes_leave_sessions_running_and_are_retried(tmp_path, backend):
    if backend == "ray":
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "ray"))
        from ray_support import ensure_ray
        ensure_ray()
    state = str(tmp_path / "state")
    p = torch.nn.Parameter(torch.zeros(2))
    local_p = torch.nn.Parameter(torch.zeros(2))
    local = tz.Optimizer([local_p], tz.m.Adam(), tz.m.LR(0.1))

    def step(opt: torch.optim.Optimizer, q: torch.Tensor) -> None:
        q.grad = 2 * (q.detach() - 1)
        opt.step()

    with tz_server.serve(state_dir=state, backend=backend, metrics_port=0, checkpoint_interval=0.0) as srv:
        opt = RemoteOptimizer([p], tz.m.Adam(), tz.m.LR(0.1), address=srv.address, session="opt")
        c = tz_client.Client(srv.address)
        study = c.create_study("study", torch.zeros(2), [tz.m.SPSA(), tz.m.LR(0.1)], seed=0)
        assert c.session("opt").persist_error == "" and metric(srv, "tz_persist_failing", "optimizer") == 0
        folders = [break_folder(state, "opt"), break_folder(state, "study")]
        for _ in range(3):  # steps and evaluations go on
            step(opt, p)
            step(local, local_p)
            trials = study.ask(n=2, wait=10)
            study.tell(trials, [float(t.params.sum()) for t in trials])
        assert torch.equal(p.detach(), local_p.detach())
        assert "cannot write the checkpoint" in c.session("opt").persist_error
        assert metric(srv, "tz_persist_failing", "optimizer") == 1
        assert metric(srv, "tz_persist_failures", "optimizer") >= 1
        study_info = c.session("study")
        assert study_info.state == "running" and "cannot write the checkpoint" in study_info.persist_error
        for folder in folders:  # the disk is back
            os.remove(folder)
        step(opt, p)
        step(local, local_p)
        trials = study.ask(n=2, wait=10)
        study.tell(trials, [float(t.params.sum()) for t in trials])
        assert c.session("opt").persist_error == ""
        assert study.ask(n=2, wait=10)  # (the study wrote its checkpoint at the step boundary)
        assert c.session("study").persist_error == ""
        study_step = c.session("study").step
        opt.close()
        c.close()
    with tz_server.serve(state_dir=state, backend=backend) as srv:  # nothing of the later steps was lost
        assert srv.backend.get("opt").step == 4
        assert srv.backend.get("study").step == study_step
        again = RemoteOptimizer([p], tz.m.Adam(), tz.m.LR(0.1), address=srv.address, session="opt")
        step(again, p)
        step(local, local_p)
        assert torch.equal(p.detach(), local_p.detach())
        again.close()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_tell_that_cannot_be_journalled_is_checkpointed_at_the_next_step(tmp_path):
    """The study's tell journal on /dev/full (every write fails with ENOSPC, a full disk): the tells
    are applied, the failure is counted, and the study checkpoints at the next step and starts a new
    journal, which then works across a restart."""
    state = tmp_path / "state"
    folder = state / "sessions" / "st"
    folder.mkdir(parents=True)
    (folder / "journal.bin").symlink_to("/dev/full")
    with tz_server.serve(state_dir=str(state), metrics_port=0) as srv:
        c = tz_client.Client(srv.address)
        study = c.create_study("st", torch.zeros(2), [tz.m.SPSA(), tz.m.LR(0.1)], seed=0)
        study.tell(study.ask(n=2), [1.0, 2.0])
        assert metric(srv, "tz_persist_failures", "study") == 1  # the tells' journal record
        trials = study.ask(n=2, wait=10)  # (handed out after the forced checkpoint of step 1)
        assert len(trials) == 2 and c.session("st").persist_error == ""
        assert not (folder / "journal.bin").is_symlink()  # a new journal, on the disk
        study.tell(trials[:1], [3.0])  # journalled
        c.close()
    with tz_server.serve(state_dir=str(state)) as srv:
        assert srv.backend.get("st").step == 1
        with tz_client.Client(srv.address, client_id="after-restart") as c:
            left = c.open_study("st").ask(n=2, wait=5)
        assert [t.id for t in left] == [trials[1].id]  # the told trial is not asked again
