"""Bad input gets a clear status code and leaves the session unchanged."""
from __future__ import annotations

import grpc
import pytest
import torch

import torchzero as tz
from tz_client import InvalidArgument, NotFound, RemoteOptimizer, ServiceError
from tz_client._proto.torchzero_service.v1 import service_pb2 as pb


def test_unknown_module_and_bad_arguments(client, name):
    with pytest.raises(InvalidArgument, match="unknown module 'NoSuchModule'"):
        client.create_study(name, torch.zeros(2), [{"module": "NoSuchModule", "args": [], "kwargs": {}}])
    with pytest.raises(InvalidArgument, match="Adam"):
        client.create_study(name, torch.zeros(2), [{"module": "Adam", "args": [], "kwargs": {"no_such_arg": 1}}])
    with pytest.raises(InvalidArgument, match="session name"):
        client.create_study("bad name/..", torch.zeros(2), [tz.m.Adam()])
    with pytest.raises(InvalidArgument, match="LR.lr: expected a number, got the string '1e-3'"):
        client.create_study(name, torch.zeros(2), [{"module": "LR", "args": [], "kwargs": {"lr": "1e-3"}}])
    with pytest.raises(InvalidArgument, match="Previous: bad arguments: OverflowError"):  # (it was INTERNAL)
        client.create_study(name, torch.zeros(2), [{"module": "Previous", "args": [], "kwargs": {"n": float("inf")}}])
    assert name not in [s.name for s in client.list_sessions()]


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
def test_parameters_must_be_real_floating_point(client, name, dtype):
    """Integer, bool and complex parameters are refused with the dtype named (not an internal error)."""
    with pytest.raises(InvalidArgument, match=f"params\\[0\\]: parameters must be floating point, got {dtype}"):
        client.create_study(name, torch.zeros(3, dtype=dtype), [tz.m.SPSA(), tz.m.LR(0.1)])
    with pytest.raises(InvalidArgument, match="must be floating point"):
        RemoteOptimizer([torch.zeros(3, dtype=dtype)], tz.m.Adam(), tz.m.LR(0.1), address=client.address,
                        session=name + "-opt")
    assert not {name, name + "-opt"} & {s.name for s in client.list_sessions()}


def test_bad_ask_arguments_are_refused_before_sending(client, name):
    study = client.create_study(name, torch.zeros(3), [tz.m.SPSA(), tz.m.LR(0.1)], seed=0)
    for n in (0, -5, 2.5, True, "3"):
        with pytest.raises(ValueError, match="n must be an integer >= 1"):
            study.ask(n=n)
    for wait in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="wait must be a number of seconds >= 0"):
            study.ask(n=1, wait=wait)
    t = study.ask()
    with pytest.raises(ValueError, match="n must be"):
        study.tell_and_ask([t], [1.0], n=0)
    assert study.info().evaluations == 0  # the refused call told nothing
    assert [x.id for x in study.ask(n=1, wait=5.0)] == ["0:1"]  # nothing was handed out by the refused calls
    for kw, match in (({"n_evals": -1}, "n_evals must be an integer >= 0"),
                      ({"n_evals": 4, "n_workers": 0}, "n_workers must be an integer >= 1"),
                      ({"n_evals": 4, "batch": 0}, "batch must be an integer >= 1")):
        with pytest.raises(ValueError, match=match):
            study.optimize(lambda x: float(x.sum()), progress=False, **kw)
    with pytest.raises(ValueError, match="seed must be an integer"):
        client.create_study(name + "-seed", torch.zeros(3), [tz.m.SPSA(), tz.m.LR(0.1)], seed="abc")
    assert study.info().evaluations == 0


def test_unknown_session(client):
    with pytest.raises(NotFound):
        client.open_study("does-not-exist")
    req = pb.TellRequest(session="does-not-exist", items=[pb.TellItem(id="0:0")])
    with pytest.raises(grpc.RpcError) as e:
        client.conn.stub.Tell(req)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_bad_tells_leave_the_study_unchanged(client, name):
    study = client.create_study(name, torch.zeros(3), [tz.m.Adam(), tz.m.LR(0.1)])
    t = study.ask()
    cases = [
        (torch.ones(4), "expected float32\\[3\\], got float32\\[4\\]"),         # shape
        (torch.ones(3, dtype=torch.float64), "expected float32\\[3\\], got float64\\[3\\]"),  # dtype
        (torch.tensor([1.0, float("nan"), 0.0]), "non-finite"),               # nan
    ]
    for grad, msg in cases:
        with pytest.raises(InvalidArgument, match=msg):
            study.tell(t, 1.0, grad)
    with pytest.raises(InvalidArgument, match="not finite"):
        study.tell(t, float("inf"), torch.ones(3))
    with pytest.raises(InvalidArgument, match="needs a gradient"):
        study.tell(t, 1.0)
    with pytest.raises(InvalidArgument, match="malformed trial id"):
        study.tell("nonsense", 1.0, torch.ones(3))
    info = study.info()
    assert info.evaluations == 0 and info.step == 0
    # a batch with one bad item applies nothing
    with pytest.raises(InvalidArgument):
        study.tell([t, t], [1.0, 2.0], [torch.ones(3), torch.ones(2)])
    assert study.info().evaluations == 0
    assert study.tell(t, 1.0, torch.ones(3)) == (1, 0)


def test_non_finite_losses_of_a_gradient_free_study_are_refused(client, name):
    study = client.create_study(name, torch.zeros(3), [tz.m.SPSA(), tz.m.LR(0.1)], seed=0)
    trials = study.ask(n=2)
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(InvalidArgument, match=f"tell '{trials[1].id}': loss is not finite"):
            study.tell(trials, [1.0, bad])
    assert study.info().evaluations == 0
    assert study.tell(trials, [1.0, -1e308]) == (2, 0)  # large but finite
    lax = client.create_study(name + "-lax", torch.zeros(3), [tz.m.SPSA(), tz.m.LR(0.1)], seed=0, allow_nonfinite=True)
    assert lax.tell(lax.ask(n=2), [float("nan"), float("inf")]) == (2, 0)


def test_bad_gradients_leave_the_optimizer_unchanged(deployment):
    p = torch.nn.Parameter(torch.ones(3))
    opt = RemoteOptimizer([p], tz.m.Adam(), tz.m.LR(0.1), address=deployment.address)
    for bad in (torch.tensor([1.0, float("inf"), 1.0]), torch.ones(4)):
        q = torch.nn.Parameter(torch.ones(bad.shape))
        q.grad = bad
        opt._params = [q]  # what a buggy / malicious worker would send
        with pytest.raises(InvalidArgument):
            opt.step()
        opt._params = [p]
    assert opt.current_step == 0
    p.grad = torch.ones(3)
    opt.step()
    local_p = torch.nn.Parameter(torch.ones(3))
    local = tz.Optimizer([local_p], tz.m.Adam(), tz.m.LR(0.1))
    local_p.grad = torch.ones(3)
    local.step()
    assert torch.equal(p.detach(), local_p.detach())
    opt.delete_session()


def test_calls_on_the_wrong_kind_of_session(client, name):
    client.create_study(name, torch.zeros(2), [tz.m.Adam()])
    req = pb.StepRequest(start=pb.StepStart(session=name, mode=pb.PUSH))
    with pytest.raises(grpc.RpcError) as e:
        list(client.conn.stub.Step(iter([req])))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert e.value.details() == f"session {name!r} is a study session; this call needs an optimizer session"


def test_service_error_carries_the_code(client):
    with pytest.raises(ServiceError) as e:
        client.open_study("nope")
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_messages_are_bounded(client, name):
    """One message may carry at most MAX_MESSAGE_BYTES; bigger payloads must be chunked streams."""
    from tz_client.wire import MAX_MESSAGE_BYTES
    client.create_study(name, torch.zeros(2), [tz.m.Adam()])
    from tz_client._proto.torchzero_service.v1 import tensor_pb2 as tpb
    huge = pb.TellItem(id="0:0", grads=[tpb.Tensor(dtype="float32", shape=[1], data=bytes(MAX_MESSAGE_BYTES + 16))])
    with pytest.raises(grpc.RpcError) as e:
        client.conn.stub.Tell(pb.TellRequest(session=name, items=[huge]))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
