"""Parameter-group options changed between steps (LR schedulers, a user setting ``lr``) reach the
hosted optimizer: a RemoteOptimizer follows the same trajectory as tz.Optimizer, bit for bit."""
from __future__ import annotations

import grpc
import pytest
import torch

import torchzero as tz
import tz_server
from tz_client import InvalidArgument, RemoteOptimizer
from tz_client._proto.torchzero_service.v1 import service_pb2 as pb
from tz_client.codec import iter_chunks, layout_of

from tzsvc_support import assert_same, training_step


def problem() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    torch.manual_seed(0)
    w = [torch.randn(4, 3), torch.randn(3)]
    return [torch.nn.Parameter(t.clone()) for t in w], [torch.nn.Parameter(t.clone()) for t in w]


def loss_of(params: list[torch.Tensor]) -> torch.Tensor:
    return sum(((p - k) ** 2).sum() for k, p in enumerate(params)) + (params[0].sum() * params[1].sum()) ** 2


def run(opt: torch.optim.Optimizer, params: list[torch.Tensor], sched: object, steps: int, closure: bool = False) -> None:
    for _ in range(steps):
        training_step(opt, lambda: loss_of(params), closure)
        sched.step()


def test_lr_scheduler_matches_local_run(deployment, name):
    remote_p, local_p = problem()
    local = tz.Optimizer(local_p, tz.m.Adam(), tz.m.LR(0.1))
    remote = RemoteOptimizer(remote_p, tz.m.Adam(), tz.m.LR(0.1), address=deployment.address, session=name)
    assert remote.param_groups[0]["lr"] == 0.1 and remote.param_groups[0]["beta1"] == 0.9  # module defaults
    local_s = torch.optim.lr_scheduler.StepLR(local, step_size=2, gamma=0.5)
    remote_s = torch.optim.lr_scheduler.StepLR(remote, step_size=2, gamma=0.5)
    run(local, local_p, local_s, 6)
    run(remote, remote_p, remote_s, 6)
    assert remote.param_groups[0]["lr"] == local.param_groups[0]["lr"] == 0.1 * 0.5 ** 3
    assert_same(remote_p, local_p)
    remote.close()


def test_per_group_options_and_closure_steps(deployment, name):
    remote_p, local_p = problem()

    def groups(ps: list[torch.Tensor]) -> list[dict]:
        return [{"params": [ps[0]], "lr": 0.05}, {"params": [ps[1]]}]
    local = tz.Optimizer(groups(local_p), tz.m.Adam(), tz.m.LR(0.1))
    remote = RemoteOptimizer(groups(remote_p), tz.m.Adam(), tz.m.LR(0.1), address=deployment.address, session=name)
    lam = [lambda k: 1.0 / (1 + k), lambda k: 0.9 ** k]
    local_s = torch.optim.lr_scheduler.LambdaLR(local, lam)
    remote_s = torch.optim.lr_scheduler.LambdaLR(remote, lam)
    run(local, local_p, local_s, 3, closure=True)
    run(remote, remote_p, remote_s, 3, closure=True)
    for g in (local, remote):  # a user writing an option by hand
        g.param_groups[1]["beta1"] = 0.5
    run(local, local_p, local_s, 3, closure=True)
    run(remote, remote_p, remote_s, 3, closure=True)
    assert_same(remote_p, local_p)
    remote.close()


def test_pipelined_session_follows_the_scheduler():
    remote_p, local_p = problem()
    with tz_server.serve(piece_bytes=16) as srv:
        local = tz.Optimizer(local_p, tz.m.Adam(), tz.m.LR(0.1))
        remote = RemoteOptimizer(remote_p, tz.m.Adam(), tz.m.LR(0.1), address=srv.address, pipelined=True)
        local_s = torch.optim.lr_scheduler.ExponentialLR(local, 0.7)
        remote_s = torch.optim.lr_scheduler.ExponentialLR(remote, 0.7)
        run(local, local_p, local_s, 5)
        run(remote, remote_p, remote_s, 5)
        assert_same(remote_p, local_p)
        remote.close()


def test_options_survive_a_restart_and_a_joining_process_sets_its_own(tmp_path):
    remote_p, local_p = problem()
    local = tz.Optimizer(local_p, tz.m.Adam(), tz.m.LR(0.1))
    with tz_server.serve(state_dir=str(tmp_path)) as srv:
        remote = RemoteOptimizer(remote_p, tz.m.Adam(), tz.m.LR(0.1), address=srv.address, session="s")
        for o in (local, remote):
            o.param_groups[0]["lr"] = 0.02
        run(local, local_p, torch.optim.lr_scheduler.ConstantLR(local, 1.0, 1), 2)
        run(remote, remote_p, torch.optim.lr_scheduler.ConstantLR(remote, 1.0, 1), 2)
        remote.close()
    with tz_server.serve(state_dir=str(tmp_path)) as srv:
        assert srv.backend.get("s").opt.param_groups[0]["lr"] == 0.02  # restored from the checkpoint
        again = RemoteOptimizer(remote_p, tz.m.Adam(), tz.m.LR(0.1), address=srv.address, session="s")
        assert again.param_groups[0]["lr"] == 0.1  # this process's options...
        loss_of(remote_p).backward()
        again.step()
        assert srv.backend.get("s").opt.param_groups[0]["lr"] == 0.1  # ...replace the session's at its first step
        again.close()


def test_state_dict_carries_the_group_options(deployment, name):
    p = torch.nn.Parameter(torch.zeros(3))
    opt = RemoteOptimizer([{"params": [p], "lr": 0.5}], tz.m.Adam(), tz.m.LR(0.1), address=deployment.address,
                          session=name)
    sd = opt.state_dict()
    assert sd == {"state": {}, "param_groups": [{"lr": 0.5, "params": [0]}]}
    other = RemoteOptimizer([torch.nn.Parameter(torch.zeros(3))], tz.m.Adam(), tz.m.LR(0.1),
                            address=deployment.address, session=name)
    assert other.param_groups[0]["lr"] == 0.1
    other.load_state_dict(sd)
    assert other.param_groups[0]["lr"] == 0.5 and other.state_dict() == sd
    with pytest.raises(ValueError, match="do not match"):
        other.load_state_dict({"state": {}, "param_groups": [{"params": [0, 1]}]})
    with pytest.raises(ValueError, match="fixed when its session is created"):
        other.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))]})
    opt.close()
    other.close()


def test_bad_group_options_leave_the_session_unchanged(deployment, client, name):
    p = torch.nn.Parameter(torch.zeros(3))
    opt = RemoteOptimizer([p], tz.m.LR(0.1), address=deployment.address, session=name)
    g = torch.ones(3)

    def push(groups: list[pb.ParamGroup]) -> None:
        start = pb.StepStart(session=name, step=0, mode=pb.PUSH, grads=layout_of([g]), groups=groups)
        list(client.conn.stub.Step(iter([pb.StepRequest(start=start), *iter_chunks([g])])))

    from tz_client import specs
    lr = specs.to_map({"lr": 5.0})
    for groups, match in (([pb.ParamGroup(params=[0], options=lr)] * 2, "has 1 parameter group"),
                          ([pb.ParamGroup(params=[1], options=lr)], "not the session's group"),
                          ([pb.ParamGroup(params=[0], options=specs.to_map({"params": 1}))], "'params' is not an option"),
                          ([pb.ParamGroup(params=[0], options=specs.to_map({"lr": {"__callable__": "os.system"}}))],
                           "unknown callable")):
        with pytest.raises(grpc.RpcError) as e:
            push(groups)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and match in e.value.details()
    with pytest.raises(grpc.RpcError) as e:  # good options, bad gradients: neither is applied
        start = pb.StepStart(session=name, step=0, mode=pb.PUSH, grads=layout_of([g]),
                             groups=[pb.ParamGroup(params=[0], options=lr)])
        bad = torch.full((3,), float("nan"))
        list(client.conn.stub.Step(iter([pb.StepRequest(start=start), *iter_chunks([bad])])))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    p.grad = g.clone()
    opt.step()  # lr 0.1, not 5.0
    assert torch.equal(p.detach(), torch.full((3,), -0.1))
    opt.close()


def test_option_values_a_module_cannot_take_are_refused(deployment, name):
    """A string, None or a list where the chain needs a number, or a NaN, is refused before the
    step (it used to fail the session at the step); the session then goes on as a local run."""
    p = torch.nn.Parameter(torch.zeros(3))
    local_p = torch.nn.Parameter(torch.zeros(3))
    opt = RemoteOptimizer([p], tz.m.Adam(), tz.m.LR(0.1), address=deployment.address, session=name)
    local = tz.Optimizer([local_p], tz.m.Adam(), tz.m.LR(0.1))
    for bad, match in (("abc", "groups[0].lr: expected a number, got the string 'abc' (LR.lr)"),
                       (None, "expected a number, got None"), ([1, 2], "expected a number, got a list"),
                       (float("nan"), "groups[0].lr: nan")):
        opt.param_groups[0]["lr"] = bad
        p.grad = torch.ones(3)
        with pytest.raises(InvalidArgument) as e:
            opt.step()
        assert match in str(e.value)
    opt.param_groups[0]["lr"] = 0.05
    local.param_groups[0]["lr"] = 0.05
    for o, q in ((opt, p), (local, local_p)):
        for _ in range(2):
            q.grad = torch.ones(3)
            o.step()
    assert opt.current_step == 2 and torch.equal(p.detach(), local_p.detach())
    opt.close()
    with pytest.raises(InvalidArgument, match="groups\\[0\\].beta1: expected a number"):  # at creation too
        RemoteOptimizer([{"params": [torch.nn.Parameter(torch.zeros(2))], "beta1": "0.9"}], tz.m.Adam(),
                        address=deployment.address, session=name + "-created")
