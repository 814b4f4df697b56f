"""The Ray backend over gRPC: sharded sessions bit for bit, refusals, shard failures, restarts."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz
import tz_client
import tz_server
from tz_client import RemoteOptimizer

from tzsvc_support import assert_same

pytestmark = pytest.mark.ray


def make_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3), torch.nn.Tanh(),
                               torch.nn.Linear(3, 1))


def data(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(32, 6, generator=g), torch.randn(32, 1, generator=g)


def groups(model: torch.nn.Module) -> list[dict]:
    return [{"params": model[0].parameters(), "lr": 0.05}, {"params": [*model[2].parameters(), *model[4].parameters()]}]


def push_steps(pairs, X, y, n):
    for _ in range(n):
        for model, opt in pairs:
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(X), y).backward()
            opt.step()


def test_sharded_gradient_push_matches_local_bit_for_bit(ray_server):
    X, y = data()
    remote_model, local_model = make_model(), make_model()
    chain = lambda: [tz.m.Adam(beta1=0.8), tz.m.WeightDecay(1e-2), tz.m.LR(0.01)]  # noqa: E731
    remote = RemoteOptimizer(groups(remote_model), *chain(), address=ray_server.address, shards=3)
    local = tz.Optimizer(groups(local_model), *chain())
    session = ray_server.backend.get(remote.session)
    assert session.shards == 3 and all(p.indices for p in session.plans)
    for _ in range(4):
        push_steps([(remote_model, remote), (local_model, local)], X, y, 1)
        assert_same(list(remote_model.parameters()), list(local_model.parameters()))
    assert remote.current_step == 4
    # a pull reads what the shards hold
    q = make_model(5)
    again = RemoteOptimizer(groups(q), *chain(), address=ray_server.address, session=remote.session, shards=3)
    assert again.current_step == 4
    assert_same(list(q.parameters()), list(local_model.parameters()))
    assert remote.delete_session()


def test_sharded_closure_step_of_a_per_parameter_chain(ray_server):
    X, y = data()
    remote_model, local_model = make_model(), make_model()
    remote = RemoteOptimizer(remote_model.parameters(), tz.m.HeavyBall(), tz.m.LR(0.05), address=ray_server.address)
    local = tz.Optimizer(local_model.parameters(), tz.m.HeavyBall(), tz.m.LR(0.05))
    assert ray_server.backend.get(remote.session).shards == 2  # the server's --shards

    def closure_for(model, opt):
        def closure(backward=True):
            loss = torch.nn.functional.mse_loss(model(X), y)
            if backward:
                opt.zero_grad()
                loss.backward()
            return loss
        return closure

    for k in range(4):
        for model in (remote_model, local_model):  # step 1: every parameter frozen (backward would raise)
            model.requires_grad_(k != 1)
        rl = remote.step(closure_for(remote_model, remote))
        ll = local.step(closure_for(local_model, local))
        assert float(rl) == float(ll)
        assert_same(list(remote_model.parameters()), list(local_model.parameters()))
    assert remote.current_step == local.current_step == 4
    assert remote.delete_session()


@pytest.mark.parametrize("chain, name", [
    (lambda: [tz.m.ClipNorm(1.0), tz.m.Adam(), tz.m.LR(0.1)], "ClipNorm"),
    (lambda: [tz.m.LBFGS(), tz.m.LR(0.1)], "LBFGS"),
    (lambda: [tz.m.Adam(), tz.m.Backtracking()], "Backtracking"),
])
def test_chains_needing_a_global_quantity_are_refused_at_creation(ray_server, chain, name):
    try:
        chain()
    except NotImplementedError:
        pytest.skip(f"{name} not implemented yet")
    model = make_model()
    with pytest.raises(tz_client.InvalidArgument, match=f"module {name} cannot be sharded"):
        RemoteOptimizer(model.parameters(), *chain(), address=ray_server.address, shards=2)
    # unsharded, the same chain is hosted (in one actor)
    opt = RemoteOptimizer(model.parameters(), *chain(), address=ray_server.address, shards=1)
    assert ray_server.backend.get(opt.session).shards == 1
    assert opt.delete_session()


def test_killed_shard_is_restarted_and_restored(ray_server, ray_session):
    X, y = data()
    remote_model, local_model = make_model(), make_model()
    remote = RemoteOptimizer(groups(remote_model), tz.m.Adam(), tz.m.LR(0.01), address=ray_server.address, shards=2)
    local = tz.Optimizer(groups(local_model), tz.m.Adam(), tz.m.LR(0.01))
    session = ray_server.backend.get(remote.session)
    ray_server.backend.checkpoint_every = 3
    session.checkpoint_every = 3  # the restored shard replays the steps since its checkpoint
    push_steps([(remote_model, remote), (local_model, local)], X, y, 4)
    ray_session.kill(session.handles[1], no_restart=False)
    push_steps([(remote_model, remote), (local_model, local)], X, y, 3)
    assert_same(list(remote_model.parameters()), list(local_model.parameters()))
    assert session.recoveries >= 1 and session.status() == "running"
    assert remote.delete_session()


def test_unsharded_closure_steps_in_an_actor_survive_a_kill(ray_server, ray_session):
    """Any chain runs unsharded: the step runs in the shard actor and calls back for evaluations."""
    if "StrongWolfe" not in tz.m.implemented() or "LBFGS" not in tz.m.implemented():
        pytest.skip("LBFGS / StrongWolfe not implemented yet")
    X, y = data()
    remote_model, local_model = make_model(), make_model()
    chain = lambda: [tz.m.LBFGS(), tz.m.StrongWolfe()]  # noqa: E731
    remote = RemoteOptimizer(remote_model.parameters(), *chain(), address=ray_server.address, shards=1)
    local = tz.Optimizer(local_model.parameters(), *chain())
    session = ray_server.backend.get(remote.session)
    session.checkpoint_every = 100  # recovery replays the recorded closure answers

    def closure_for(model, opt):
        def closure(backward=True):
            loss = torch.nn.functional.mse_loss(model(X), y)
            if backward:
                opt.zero_grad()
                loss.backward()
            return loss
        return closure

    for i in range(4):
        if i == 2:
            ray_session.kill(session.handles[0], no_restart=False)
        rl = remote.step(closure_for(remote_model, remote))
        ll = local.step(closure_for(local_model, local))
        assert float(rl) == float(ll)
        assert_same(list(remote_model.parameters()), list(local_model.parameters()))
    assert session.recoveries >= 1
    assert remote.delete_session()


def test_sharded_session_follows_a_scheduler_and_frozen_layers_through_a_shard_kill(ray_server, ray_session):
    X, y = data()
    remote_model, local_model = make_model(), make_model()
    remote = RemoteOptimizer(groups(remote_model), tz.m.Adam(), tz.m.LR(0.01), address=ray_server.address, shards=3)
    local = tz.Optimizer(groups(local_model), tz.m.Adam(), tz.m.LR(0.01))
    session = ray_server.backend.get(remote.session)
    session.checkpoint_every = 3  # the restored shard replays steps with their options and frozen layers
    schedulers = [torch.optim.lr_scheduler.ExponentialLR(o, 0.8) for o in (remote, local)]
    for k in range(8):
        for model in (remote_model, local_model):
            model[2].requires_grad_(not 2 <= k < 5)
        if k == 4:
            ray_session.kill(session.handles[1], no_restart=False)
        push_steps([(remote_model, remote), (local_model, local)], X, y, 1)
        used = [g["lr"] for g in local.param_groups]
        for sched in schedulers:
            sched.step()
        assert_same(list(remote_model.parameters()), list(local_model.parameters()))
    assert session.recoveries >= 1
    assert [g["options"]["lr"] for g in session.current_groups()] == used  # the last step's
    assert used[1] == pytest.approx(0.01 * 0.8 ** 7)
    assert remote.delete_session()


def test_group_option_that_makes_a_sharded_chain_global_is_refused(ray_server):
    X, y = data()
    remote_model, local_model = make_model(), make_model()
    chain = lambda: [tz.m.HeavyBall(), tz.m.Cautious(), tz.m.LR(0.01)]  # noqa: E731
    remote = RemoteOptimizer(groups(remote_model), *chain(), address=ray_server.address, shards=2)
    local = tz.Optimizer(groups(local_model), *chain())
    push_steps([(remote_model, remote), (local_model, local)], X, y, 1)
    remote.param_groups[0]["normalize"] = True
    with pytest.raises(tz_client.InvalidArgument, match="Cautious cannot be sharded: a parameter group sets normalize"):
        push_steps([(remote_model, remote)], X, y, 1)
    del remote.param_groups[0]["normalize"]  # nothing of the refused step was applied
    push_steps([(remote_model, remote), (local_model, local)], X, y, 2)
    assert remote.current_step == 3
    assert_same(list(remote_model.parameters()), list(local_model.parameters()))
    assert remote.delete_session()


@pytest.mark.parametrize("first", ["ray", "local"])
def test_session_survives_a_restart_onto_the_ray_backend(ray_session, tmp_path, first):
    """A sharded session restarts with its shards, and a local-backend checkpoint continues unsharded
    on a Ray server (whatever its default --shards), both with the options changed before the restart."""
    X, y = data()
    remote_model, local_model = make_model(), make_model()
    local = tz.Optimizer(groups(local_model), tz.m.Adam(), tz.m.LR(0.01))
    on_ray = {"backend": "ray", "ray": {"shards": 2}}
    with tz_server.serve(state_dir=str(tmp_path), **(on_ray if first == "ray" else {})) as srv:
        remote = RemoteOptimizer(groups(remote_model), tz.m.Adam(), tz.m.LR(0.01), address=srv.address,
                                 session="restart-me")
        for o in (remote, local):
            o.param_groups[1]["lr"] = 0.003
        push_steps([(remote_model, remote), (local_model, local)], X, y, 3)
        remote.close()
    with tz_server.serve(state_dir=str(tmp_path), **on_ray) as srv:
        s = srv.backend.get("restart-me")
        assert s.step == 3 and s.shards == (2 if first == "ray" else 1)
        assert [g["options"] for g in s.current_groups()] == [{"lr": 0.05}, {"lr": 0.003}]
        remote = RemoteOptimizer(groups(remote_model), tz.m.Adam(), tz.m.LR(0.01), address=srv.address,
                                 session="restart-me")
        remote.param_groups[1]["lr"] = 0.003
        push_steps([(remote_model, remote), (local_model, local)], X, y, 2)
        assert_same(list(remote_model.parameters()), list(local_model.parameters()))
        assert remote.delete_session()


def test_local_backend_refuses_ray_only_options():
    with tz_server.serve() as srv:
        with pytest.raises(tz_client.InvalidArgument, match="--backend ray"):
            RemoteOptimizer([torch.nn.Parameter(torch.zeros(2))], tz.m.LR(0.1), address=srv.address, shards=2)
        with tz_client.Client(srv.address) as c, pytest.raises(tz_client.InvalidArgument, match="--backend ray"):
            c.create_study("x", torch.zeros(2), [tz.m.SPSA(), tz.m.LR(0.1)], objective="sphere", max_evals=10)
