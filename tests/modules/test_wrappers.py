"""Wrap: torch.optim optimizers as modules."""
from __future__ import annotations

import io

import pytest
import torch

import torchzero as tz


def problem():
    x = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[0.5, -1.0], [2.0, 0.1]], dtype=torch.float64, requires_grad=True)
    fn = lambda: (x ** 2 * torch.arange(1, 4)).sum() + (y ** 4).sum() + (x.sum() * y.sum()) ** 2  # noqa: E731
    return [x, y], fn


def run_tz(mods_fn, steps=5, groups=None):
    params, fn = problem()
    opt = tz.Optimizer(groups(params) if groups else params, *mods_fn())
    for _ in range(steps):
        def closure(backward=True):
            loss = fn()
            if backward:
                opt.zero_grad()
                loss.backward()
            return loss
        opt.step(closure)
    return [p.detach() for p in params], opt


def run_torch(opt_fn, steps=5):
    params, fn = problem()
    opt = opt_fn(params)
    for _ in range(steps):
        opt.zero_grad()
        fn().backward()
        opt.step()
    return [p.detach() for p in params]


@pytest.mark.parametrize("name, kwargs", [
    ("Adam", dict(lr=0.1)), ("SGD", dict(lr=0.01, momentum=0.9)), ("Adagrad", dict(lr=0.1)), ("RMSprop", dict(lr=0.01)),
])
def test_wrap_equals_torch_optim(name, kwargs):
    cls = getattr(torch.optim, name)
    expected = run_torch(lambda p: cls(p, **kwargs))
    got, _ = run_tz(lambda: [tz.m.Wrap(cls, **kwargs)])  # last module: the wrapped optimizer steps the parameters
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    lr = kwargs.pop("lr")
    got, _ = run_tz(lambda: [tz.m.Wrap(cls, lr=1.0, **kwargs), tz.m.LR(lr)])  # as an update rule followed by LR
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_wrap_in_a_chain_receives_the_update_as_gradient():
    # SGD(lr=1) returns its input: Wrap in the middle of a chain is the identity
    a, _ = run_tz(lambda: [tz.m.Adam(), tz.m.LR(0.1)])
    b, _ = run_tz(lambda: [tz.m.Adam(), tz.m.Wrap(torch.optim.SGD, lr=1.0), tz.m.LR(0.1)])
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


def test_param_group_settings_reach_the_wrapped_optimizer():
    groups = lambda ps: [{"params": [ps[0]], "lr": 0.05}, {"params": [ps[1]]}]  # noqa: E731
    got, _ = run_tz(lambda: [tz.m.Wrap(torch.optim.Adam, lr=0.1)], groups=groups)
    params, fn = problem()
    opt = torch.optim.Adam([{"params": [params[0]], "lr": 0.05}, {"params": [params[1]]}], lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        fn().backward()
        opt.step()
    for a, b in zip(got, params):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=0)
    # use_param_groups=False ignores them
    got2, _ = run_tz(lambda: [tz.m.Wrap(torch.optim.Adam, lr=0.1, use_param_groups=False)], groups=groups)
    expected = run_torch(lambda p: torch.optim.Adam(p, lr=0.1))
    for a, b in zip(got2, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_scheduler_changes_reach_the_wrapped_optimizer():
    params, fn = problem()
    opt = tz.Optimizer([{"params": params, "lr": 0.1}], tz.m.Wrap(torch.optim.SGD, lr=0.1))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    ref_params, _ = problem()
    ref = torch.optim.SGD(ref_params, lr=0.1)
    ref_sched = torch.optim.lr_scheduler.StepLR(ref, step_size=1, gamma=0.5)
    for _ in range(3):
        opt.zero_grad()
        fn().backward()
        opt.step()
        sched.step()
        ref.zero_grad()
        (ref_params[0] ** 2 * torch.arange(1, 4)).sum().add((ref_params[1] ** 4).sum()).add((ref_params[0].sum() * ref_params[1].sum()) ** 2).backward()
        ref.step()
        ref_sched.step()
    for a, b in zip(params, ref_params):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=0)


def test_wrapped_state_round_trips():
    got, opt = run_tz(lambda: [tz.m.Wrap(torch.optim.Adam, lr=1.0), tz.m.LR(0.1)], steps=3)
    sd = opt.state_dict()
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    assert any("exp_avg" in st for st in sd["modules"][0]["state"].values())
    params, fn = problem()
    with torch.no_grad():
        for p, g in zip(params, got):
            p.copy_(g)
    opt2 = tz.Optimizer(params, tz.m.Wrap(torch.optim.Adam, lr=1.0), tz.m.LR(0.1))
    opt2.load_state_dict(torch.load(buf, weights_only=True))
    for o in (opt, opt2):
        ps = o.param_groups[0]["params"]
        o.zero_grad()
        (ps[0] ** 2 * torch.arange(1, 4)).sum().add((ps[1] ** 4).sum()).add((ps[0].sum() * ps[1].sum()) ** 2).backward()
        o.step()
    for a, b in zip(opt.param_groups[0]["params"], opt2.param_groups[0]["params"]):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=0)
    opt.reset()
    assert not opt.modules[0].optimizer.state


def test_closure_optimizers_get_the_objective_closure():
    params, fn = problem()
    opt = tz.Optimizer(params, tz.m.Wrap(torch.optim.LBFGS, lr=1, line_search_fn="strong_wolfe"))

    def closure(backward=True):
        loss = fn()
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    for _ in range(3):
        opt.step(closure)
    assert float(fn().detach()) < 1e-6
    with pytest.raises(RuntimeError, match="closure"):
        p2, fn2 = problem()
        o = tz.Optimizer(p2, tz.m.Wrap(torch.optim.LBFGS))
        fn2().backward()
        o.step()


def test_spec_of_wrap():
    m = tz.m.Wrap(torch.optim.Adam, lr=1.0, betas=(0.8, 0.9))
    spec = tz.to_spec(m)
    assert spec["args"] == [{"__callable__": "torch.optim.Adam"}]
    m2 = tz.from_spec(spec)
    assert m2._opt_fn is torch.optim.Adam and m2._kwargs == {"lr": 1.0, "betas": (0.8, 0.9)}
    with pytest.raises(tz.SpecError):
        tz.to_spec(tz.m.Wrap(lambda p: torch.optim.SGD(p, lr=1.0)))
