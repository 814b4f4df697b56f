"""A session that cannot be restored is set aside with its reason, never deleted or overwritten,
and the server serves every other session (real files, embedded servers on the same directory)."""
from __future__ import annotations

import importlib.util
import os
import sys

import pytest
import torch

import torchzero as tz
import tz_client
import tz_server


def _study(client: tz_client.Client, name: str) -> None:
    study = client.create_study(name, torch.zeros(3), [tz.m.SPSA(), tz.m.LR(0.1)], seed=1)
    for _ in range(4):
        study.tell(study.ask(), 1.0)


BACKENDS = ["local"]
if importlib.util.find_spec("ray") is not None:
    BACKENDS.append(pytest.param("ray", marks=pytest.mark.ray))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("damage", ["truncated", "unknown module"])
def test_unrestorable_session_is_set_aside(tmp_path, damage, backend):
    if backend == "ray":
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "ray"))
        from ray_support import ensure_ray
        ensure_ray()

    def serve():
        return tz_server.serve(state_dir=str(state), backend=backend)

    state = tmp_path / "state"
    with serve() as srv:
        c = tz_client.Client(srv.address)
        _study(c, "bad")
        _study(c, "good")
        good_best = c.open_study("good").best()
        c.close()
    ck = state / "sessions" / "bad" / "checkpoint.pt"
    if damage == "truncated":
        ck.write_bytes(ck.read_bytes()[:100])
    else:  # a checkpoint this server cannot rebuild (e.g. written by a newer version)
        st = torch.load(ck, weights_only=True)
        st["config"]["modules"][0]["module"] = "NoSuchModule"
        torch.save(st, ck)
    damaged = ck.read_bytes()

    with serve() as srv:
        c = tz_client.Client(srv.address)
        assert [s.name for s in c.list_sessions()] == ["good"]
        params, loss = c.open_study("good").best()
        assert loss == good_best[1] and torch.equal(params, good_best[0])
        (aside,) = (state / "unrestorable").iterdir()
        assert aside.name.startswith("bad-")
        assert (aside / "checkpoint.pt").read_bytes() == damaged  # kept as it was
        reason = (aside / "reason.txt").read_text()
        assert ("NoSuchModule" in reason) if damage == "unknown module" else reason.strip()
        # the name is free again; the new session does not touch what was set aside
        _study(c, "bad")
        assert (aside / "checkpoint.pt").read_bytes() == damaged
        c.close()
    with serve() as srv:  # and both restore from now on
        c = tz_client.Client(srv.address)
        assert sorted(s.name for s in c.list_sessions()) == ["bad", "good"]
        c.close()
