"""Per-session tokens: a session created with its own token needs it on every call; the server's
token still guards the server."""
from __future__ import annotations

import grpc
import pytest
import torch

import torchzero as tz
import tz_client
import tz_server
from tz_client import AlreadyExists, RemoteOptimizer, Unauthenticated
from tz_client._proto.torchzero_service.v1 import service_pb2 as pb
from tz_client.wire import Stub


def test_study_needs_its_token(deployment, client, name):
    study = client.create_study(name, torch.zeros(3), [tz.m.SPSA(), tz.m.LR(0.1)], seed=0, session_token="tok-a")
    t = study.ask()
    assert study.tell(t, 1.0) == (1, 0)
    other = tz_client.Client(deployment.address, retry_timeout=1)
    try:
        for token in (None, "wrong"):
            with pytest.raises(Unauthenticated):
                other.open_study(name, session_token=token)
            with pytest.raises(Unauthenticated):
                other.session(name, session_token=token)
            with pytest.raises(Unauthenticated):
                other.delete(name, session_token=token)
            # a Study object built without the token (e.g. from stale info) gets nothing either
            sneaky = tz_client.Study(other, study._info, session_token=token)
            with pytest.raises(Unauthenticated):
                sneaky.ask(n=4, wait=0)
            with pytest.raises(Unauthenticated):
                sneaky.tell("0:1", 0.0)
            with pytest.raises(Unauthenticated):
                sneaky.best()
            with pytest.raises(Unauthenticated):
                other.create_study(name, torch.zeros(3), [tz.m.SPSA(), tz.m.LR(0.1)], exist_ok=True, session_token=token)
        # nothing above changed the study
        assert study.info().evaluations == 1
        # listing shows a protected session by name and kind only
        listed = {s.name: s for s in other.list_sessions()}
        assert listed[name].protected and listed[name].kind == "study"
        assert listed[name].shapes == [] and listed[name].best_loss is None and listed[name].modules == []
        # with the token, another client works on it like the creator
        same = other.open_study(name, session_token="tok-a")
        assert same.info().protected and same.info().evaluations == 1
        joined = other.create_study(name, torch.zeros(3), [tz.m.SPSA(), tz.m.LR(0.1)], exist_ok=True,
                                    session_token="tok-a")
        trials = joined.ask(n=4, wait=0)
        assert [x.id for x in trials] == ["0:1"]
        assert joined.tell(trials, [2.0]) == (1, 0)
        assert same.best()[1] == 1.0
        assert other.delete(name, session_token="tok-a")
    finally:
        other.close()


def test_unprotected_sessions_stay_open(client, name):
    study = client.create_study(name, torch.zeros(2), [tz.m.SPSA(), tz.m.LR(0.1)])
    assert not study.info().protected
    # a token given for an open session is ignored on calls, but cannot be set by joining it
    assert client.open_study(name, session_token="anything").ask().id == "0:0"
    with pytest.raises(AlreadyExists):
        client.create_study(name, torch.zeros(2), [tz.m.SPSA(), tz.m.LR(0.1)], exist_ok=True, session_token="t")
    assert client.delete(name)


def test_remote_optimizer_session_token(deployment, name):
    p = torch.nn.Parameter(torch.ones(3))
    opt = RemoteOptimizer([p], tz.m.LR(0.5), address=deployment.address, session=name, session_token="tok-b")
    p.grad = torch.ones(3)
    opt.step()
    assert p.tolist() == [0.5] * 3
    q = torch.nn.Parameter(torch.zeros(3))
    for token in (None, "wrong"):
        with pytest.raises(Unauthenticated):
            RemoteOptimizer([q], tz.m.LR(0.5), address=deployment.address, session=name, session_token=token,
                            retry_timeout=1)
    # raw calls without the session token: Step and Pull are refused, the session is unchanged
    with grpc.insecure_channel(deployment.address) as ch:
        stub = Stub(ch)
        with pytest.raises(grpc.RpcError) as e:
            next(iter(stub.Pull(pb.SessionRef(name=name))))
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        start = pb.StepRequest(start=pb.StepStart(session=name, step=1, mode=pb.PUSH))
        with pytest.raises(grpc.RpcError) as e:
            next(iter(stub.Step(iter([start]))))
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # joining with the token resumes the hosted parameters
    joined = RemoteOptimizer([q], tz.m.LR(0.5), address=deployment.address, session=name, session_token="tok-b")
    assert q.tolist() == [0.5] * 3 and joined.current_step == 1
    q.grad = torch.ones(3)
    joined.step()
    assert q.tolist() == [0.0] * 3
    assert joined.delete_session()
    opt.close()
    joined.close()


def test_server_token_and_session_token_are_both_needed(name, tmp_path):
    with tz_server.serve(token="server-tok", state_dir=str(tmp_path)) as srv:
        c = tz_client.Client(srv.address, token="server-tok")
        study = c.create_study(name, torch.zeros(2), [tz.m.SPSA(), tz.m.LR(0.1)], seed=1, session_token="sess-tok")
        assert study.ask().id == "0:0"
        no_server = tz_client.Client(srv.address, retry_timeout=1)
        with pytest.raises(Unauthenticated):
            no_server.open_study(name, session_token="sess-tok")
        with pytest.raises(Unauthenticated):
            c.open_study(name)
        no_server.close()
        c.close()
    # only a hash of the session token is saved; it still guards the session after a restart
    saved = b"".join(f.read_bytes() for f in tmp_path.rglob("*") if f.is_file())
    assert b"sess-tok" not in saved
    with tz_server.serve(token="server-tok", state_dir=str(tmp_path)) as srv:
        c = tz_client.Client(srv.address, token="server-tok", retry_timeout=1)
        with pytest.raises(Unauthenticated):
            c.open_study(name)
        assert c.open_study(name, session_token="sess-tok").info().protected
        c.close()
