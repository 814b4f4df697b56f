"""The shard plan and the sharding policy, checked without Ray: the shard actor class runs in
this process, so every module of the allow-list is checked bit for bit against the unsharded
optimizer quickly."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz
from tz_server.backends.ray.actor import ShardActor, StaleShard
from tz_server.backends.ray.sharding import PER_PARAMETER, check_shardable, group_of, plan_shards, shard_settings
from tz_server.errors import InvalidArgument
from tz_server.sessions.base import build_optimizer
from tz_server.sessions.config import SessionConfig

SHAPES = [(7, 5), (5,), (3, 7), (3,), (), (2, 1, 3), (11,)]


def layout(dtypes=None):
    dtypes = dtypes or [torch.float32] * len(SHAPES)
    return [(s, d) for s, d in zip(SHAPES, dtypes)]


def test_plan_balances_by_size_and_keeps_every_tensor_once():
    lay = [((1000,), torch.float32), ((10,), torch.float32), ((990,), torch.float32), ((5,), torch.float32)]
    plans = plan_shards(lay, [], 2)
    assert sorted(i for p in plans for i in p.indices) == [0, 1, 2, 3]
    loads = [sum(lay[i][0][0] for i in p.indices) for p in plans]
    assert max(loads) - min(loads) <= 10
    assert all(p.indices == sorted(p.indices) for p in plans)
    assert len(plan_shards(lay, [], 9)) == 4  # never more shards than tensors
    assert [p.indices for p in plan_shards(lay, [], 1)] == [[0, 1, 2, 3]]


def test_plan_keeps_groups_and_adds_stand_ins():
    groups = [{"params": [0, 1], "options": {"lr": 0.5}}, {"params": [2, 3], "options": {}}]
    lay = [((100,), torch.float32), ((100,), torch.float32), ((1,), torch.float32), ((1,), torch.float64)]
    plans = plan_shards(lay, groups, 2)
    for p in plans:
        # every shard sees every (group, dtype) pair of the session, through stand-ins if needed
        have = {(0 if i in (0, 1) else 1, lay[i][1]) for i in p.indices} | set(p.standins)
        assert have == {(0, torch.float32), (1, torch.float32), (1, torch.float64)}
        for g in p.groups:
            assert g["options"] in ({"lr": 0.5}, {})
        assert sorted(j for g in p.groups for j in g["params"]) == list(range(p.size))
        assert type(p).from_state(p.to_state()) == p


def make_params(dtypes=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    lay = layout(dtypes)
    return [torch.randn(s, generator=g, dtype=d) for s, d in lay]


def run_unsharded(modules, groups, params, grads):
    ps = [p.clone().requires_grad_(True) for p in params]
    cfg = SessionConfig(name="u", kind="optimizer", modules=[tz.to_spec(m) for m in modules()], groups=groups)
    opt = build_optimizer(cfg, ps)
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = g.clone()
        opt.step()
    return [p.detach() for p in ps]


def run_sharded(modules, groups, params, grads, n):
    cfg = SessionConfig(name="s", kind="optimizer", modules=[tz.to_spec(m) for m in modules()], groups=groups)
    plans = plan_shards([(tuple(p.shape), p.dtype) for p in params], groups, n)
    actors = []
    for plan in plans:
        init = {"params": [params[i].clone() for i in plan.indices] + [torch.zeros(1, dtype=d) for _, d in plan.standins]}
        actors.append(ShardActor(cfg.to_state(), plan.to_state(), init))
    out = [None] * len(params)
    for step, gs in enumerate(grads):
        for plan, a in zip(plans, actors):
            res = a.push(step, [gs[i].clone() for i in plan.indices])
            for i, t in zip(plan.indices, res):
                out[i] = t
    return out, actors, plans


GROUPS = [{"params": [0, 1, 4], "options": {"lr": 0.05}}, {"params": [2, 3, 5, 6], "options": {}}]

CHAINS = {
    "Adam": lambda: [tz.m.Adam(beta1=0.8), tz.m.LR(0.01)],
    "Adam-last": lambda: [tz.m.Adam()],
    "Adam-amsgrad-wd": lambda: [tz.m.Adam(amsgrad=True), tz.m.WeightDecay(0.1), tz.m.LR(0.01)],
    "HeavyBall": lambda: [tz.m.HeavyBall(), tz.m.LR(0.01)],
    "NAG": lambda: [tz.m.NAG(), tz.m.LR(0.01)],
    "EMA": lambda: [tz.m.EMA(debias=True), tz.m.LR(0.01)],
    "Adagrad": lambda: [tz.m.Adagrad(), tz.m.LR(0.01)],
    "RMSprop": lambda: [tz.m.RMSprop(centered=True), tz.m.LR(0.01)],
    "Lion": lambda: [tz.m.Lion(), tz.m.LR(0.01)],
    "Rprop": lambda: [tz.m.Rprop(), tz.m.LR(0.01)],
    "EMASquared": lambda: [tz.m.EMASquared(), tz.m.SqrtEMASquared(), tz.m.LR(0.01)],
    "Debias": lambda: [tz.m.EMA(), tz.m.Debias(beta1=0.9), tz.m.LR(0.01)],
    "Cautious": lambda: [tz.m.HeavyBall(), tz.m.Cautious(), tz.m.LR(0.01)],
    "StepSize": lambda: [tz.m.Sign(), tz.m.StepSize(0.01)],
    "DirectWeightDecay": lambda: [tz.m.Adam(), tz.m.DirectWeightDecay(0.1), tz.m.LR(0.01)],
    "elementwise": lambda: [tz.m.Clone(), tz.m.Abs(), tz.m.Negate(), tz.m.ClipValue(0.5), tz.m.Identity(), tz.m.Noop(),
                            tz.m.Add(1.0), tz.m.Sub(0.5), tz.m.Mul(2.0), tz.m.Div(3.0), tz.m.LR(0.01)],
    "Previous": lambda: [tz.m.Previous(), tz.m.LR(0.01)],
}


def test_every_allow_listed_module_has_a_chain():
    covered = {type(m).__name__ for chain in CHAINS.values() for m in _modules(chain)}
    assert set(PER_PARAMETER) <= covered | _unimplemented(), set(PER_PARAMETER) - covered


def _modules(chain):
    try:
        opt = tz.Optimizer([torch.zeros(1, requires_grad=True)], *chain())
    except NotImplementedError:
        return []
    return opt.unrolled_modules


def _unimplemented():
    return {n for n in PER_PARAMETER if n not in tz.m.implemented()}


@pytest.mark.parametrize("chain", sorted(CHAINS))
@pytest.mark.parametrize("n", [2, 3])
def test_per_parameter_chains_sharded_match_unsharded_bit_for_bit(chain, n):
    try:
        CHAINS[chain]()
    except NotImplementedError:
        pytest.skip(f"{chain} not implemented yet")
    check_shardable(_modules(CHAINS[chain]), GROUPS)
    params = make_params()
    g = torch.Generator().manual_seed(1)
    grads = [[torch.randn(p.shape, generator=g) for p in params] for _ in range(8)]
    want = run_unsharded(CHAINS[chain], GROUPS, params, grads)
    got, _, plans = run_sharded(CHAINS[chain], GROUPS, params, grads, n)
    assert len(plans) == n
    for i, (a, b) in enumerate(zip(want, got)):
        assert torch.equal(a, b), f"{chain}: tensor {i} differs by {(a - b).abs().max()}"


def schedule(k):
    """Step ``k``'s group options and frozen tensors: learning rates that change every step; the
    group-0 tensors of a shard frozen while group 0 trains on another shard (shard 0 then has no
    trainable tensor, shard 2 only group-1 ones); a whole group frozen; everything frozen."""
    options = [{"lr": 0.05 * 0.8 ** k}, {"lr": 0.02} if k >= 3 else {}]
    frozen = {2: [0], 3: [1, 4], 4: [0, 1, 4], 5: list(range(len(SHAPES))), 6: [2]}.get(k, [])
    return options, frozen


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_option_changes_and_frozen_tensors_sharded_match_unsharded(chain):
    try:
        CHAINS[chain]()
    except NotImplementedError:
        pytest.skip(f"{chain} not implemented yet")
    params = make_params()
    g = torch.Generator().manual_seed(2)
    grads = [[torch.randn(p.shape, generator=g) for p in params] for _ in range(8)]
    cfg = SessionConfig(name="s", kind="optimizer", modules=[tz.to_spec(m) for m in CHAINS[chain]()], groups=GROUPS)
    ps = [p.clone().requires_grad_(True) for p in params]
    opt = build_optimizer(cfg, ps)
    plans = plan_shards([(tuple(p.shape), p.dtype) for p in params], GROUPS, 3)
    assert [p.indices for p in plans] == [[0], [2, 3], [1, 4, 5, 6]]  # (group 0: tensors 0, 1 and 4)
    actors = [ShardActor(cfg.to_state(), plan.to_state(), {"params": [params[i].clone() for i in plan.indices]
                         + [torch.zeros(1, dtype=d) for _, d in plan.standins]}) for plan in plans]
    lay, gid = [(tuple(p.shape), p.dtype) for p in params], group_of(GROUPS, len(params))
    for k, gs in enumerate(grads):
        options, frozen = schedule(k)
        for grp, opts in zip(opt.param_groups, options):
            grp.set_options(opts)
        for i, p in enumerate(ps):
            p.requires_grad_(i not in frozen)
            p.grad = gs[i].clone()
        opt.step()
        for plan, a in zip(plans, actors):
            out = a.push(k, [gs[i].clone() for i in plan.indices], shard_settings(plan, lay, gid, options, frozen))
            for i, t in zip(plan.indices, out):
                assert torch.equal(t, ps[i].detach()), f"{chain}: step {k}, tensor {i}"


def test_shard_settings_map_groups_and_freeze_stand_ins_of_idle_pairs():
    lay = layout()
    gid = group_of(GROUPS, len(lay))
    plans = plan_shards(lay, GROUPS, 3)
    options = [{"lr": 1.0}, {"lr": 2.0}]
    assert [shard_settings(p, lay, gid, options, [])[0] for p in plans] == [[{"lr": 1.0}, {"lr": 2.0}]] * 3
    # shard 0 holds tensor 0 and one stand-in per (group, dtype): group 0's stays trainable while
    # group 0 trains elsewhere, and is frozen with the whole group
    assert shard_settings(plans[0], lay, gid, options, [0]) == ([{"lr": 1.0}, {"lr": 2.0}], [0])
    assert shard_settings(plans[0], lay, gid, options, [0, 1, 4]) == ([{"lr": 1.0}, {"lr": 2.0}], [0, 1])
    # without groups: one group, options of group 0
    assert shard_settings(plan_shards(lay, [], 2)[1], lay, [0] * len(lay), [{"lr": 3.0}], []) == ([{"lr": 3.0}], [])


def test_mixed_dtypes_sharded_match_unsharded():
    dtypes = [torch.float32, torch.float64, torch.float32, torch.float32, torch.float64, torch.float32, torch.float32]
    params = make_params(dtypes)
    grads = [[torch.randn(p.shape, dtype=p.dtype) for p in params] for _ in range(5)]
    chain = CHAINS["Adam-last"]
    want = run_unsharded(chain, [], params, grads)
    got, _, _ = run_sharded(chain, [], params, grads, 3)
    assert all(torch.equal(a, b) for a, b in zip(want, got))


def test_shard_state_round_trip_and_replay():
    params = make_params()
    grads = [[torch.randn(p.shape) for p in params] for _ in range(6)]
    chain = CHAINS["Adam"]
    want = run_unsharded(chain, GROUPS, params, grads)
    _, actors, plans = run_sharded(chain, GROUPS, params, grads[:3], 2)
    a, plan = actors[1], plans[1]
    ck = a.state()
    torch.save(ck, buf := __import__("io").BytesIO())
    buf.seek(0)
    assert torch.load(buf, weights_only=True)["step"] == 3
    parts = [[gs[i].clone() for i in plan.indices] for gs in grads]
    for s in range(3, 5):
        a.push(s, parts[s])
    assert a.push(4, parts[4])  # a retried step is not applied twice
    with pytest.raises(StaleShard):
        a.push(6, parts[5])
    # a restarted shard: the checkpoint at step 3 and the log of steps 3 and 4
    fresh = ShardActor(SessionConfig(name="s", kind="optimizer", modules=[tz.to_spec(m) for m in chain()],
                                     groups=GROUPS).to_state(), plan.to_state(),
                       {"params": [torch.zeros_like(params[i]) for i in plan.indices] + [torch.zeros(1)] * len(plan.standins)})
    assert fresh.restore(ck, [("push", parts[3], None), ("push", parts[4], None)]) == 5
    for b in (a, fresh):
        out = b.push(5, parts[5])
        for i, t in zip(plan.indices, out):
            assert torch.equal(t, want[i])


@pytest.mark.parametrize("modules, name", [
    (lambda: [tz.m.ClipNorm(1.0), tz.m.LR(0.1)], "ClipNorm"),
    (lambda: [tz.m.Adam(), tz.m.Backtracking()], "Backtracking"),
    (lambda: [tz.m.LBFGS(), tz.m.LR(0.1)], "LBFGS"),
    (lambda: [tz.m.SPSA(), tz.m.LR(0.1)], "SPSA"),
    (lambda: [tz.m.HeavyBall(), tz.m.Cautious(normalize=True), tz.m.LR(0.1)], "Cautious"),
    (lambda: [tz.m.Adam(exp_avg_tfm=tz.m.Normalize()), tz.m.LR(0.1)], "Normalize"),
])
def test_chains_needing_a_global_quantity_are_refused_by_name(modules, name):
    try:
        mods = _modules(modules)
    except NotImplementedError:
        pytest.skip(f"{name} not implemented yet")
    if not mods:
        pytest.skip(f"{name} not implemented yet")
    with pytest.raises(InvalidArgument, match=f"module {name} cannot be sharded"):
        check_shardable(mods, [])


def test_group_option_that_makes_a_module_global_is_refused():
    mods = _modules(lambda: [tz.m.HeavyBall(), tz.m.Cautious(), tz.m.LR(0.1)])
    check_shardable(mods, [{"params": [0], "options": {}}])
    with pytest.raises(InvalidArgument, match="Cautious.*normalize"):
        check_shardable(mods, [{"params": [0], "options": {"normalize": True}}])
