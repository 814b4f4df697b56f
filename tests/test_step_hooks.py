"""torch.optim's step hooks and profiler annotation on tz.Optimizer (run only when needed)."""
from __future__ import annotations

import warnings

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

import torchzero as tz


def quadratic_problem():
    x = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))

    def closure(backward=True):
        loss = (x ** 2).sum()
        if backward:
            x.grad = None
            loss.backward()
        return loss
    return x, closure


def test_step_hooks_are_called_and_can_rewrite_the_arguments():
    x, closure = quadratic_problem()
    opt = tz.Optimizer([x], tz.m.LR(0.1))
    seen = []
    calls = {"closure": 0}

    def counting_closure(backward=True):
        calls["closure"] += 1
        return closure(backward)

    opt.register_step_pre_hook(lambda o, args, kwargs: ((o, counting_closure), kwargs))  # (args[0] is the optimizer)
    opt.register_step_post_hook(lambda o, args, kwargs: seen.append(args[1]))
    opt.step(closure)
    assert calls["closure"] == 1 and seen == [counting_closure]
    assert torch.allclose(x.detach(), torch.tensor([0.8, -1.6, 2.4]))


def test_global_step_hooks_are_called():
    x, closure = quadratic_problem()
    opt = tz.Optimizer([x], tz.m.LR(0.1))
    order = []
    pre = register_optimizer_step_pre_hook(lambda o, a, k: order.append(("pre", o)))
    post = register_optimizer_step_post_hook(lambda o, a, k: order.append(("post", o)))
    try:
        opt.step(closure)
    finally:
        pre.remove()
        post.remove()
    opt.step(closure)  # removed: not called again
    assert order == [("pre", opt), ("post", opt)]


def test_a_running_profiler_sees_the_step():
    x, closure = quadratic_problem()
    opt = tz.Optimizer([x], tz.m.Adam(), tz.m.LR(0.1))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        opt.step(closure)
    names = {e.key for e in prof.key_averages()}
    assert "Optimizer.step#Optimizer.step" in names


def test_no_annotation_without_hooks_or_profiler(monkeypatch):
    """The profiler annotation is skipped when nothing would see it, and entered when a hook is set."""
    entered = []
    original = torch.autograd.profiler.record_function.__enter__

    def spy(self):
        entered.append(self.name)
        return original(self)
    monkeypatch.setattr(torch.autograd.profiler.record_function, "__enter__", spy)
    x, closure = quadratic_problem()
    opt = tz.Optimizer([x], tz.m.LR(0.1))
    opt.step(closure)
    assert entered == []
    handle = opt.register_step_post_hook(lambda *a: None)
    opt.step(closure)
    handle.remove()
    assert entered == ["Optimizer.step#Optimizer.step"]


def test_the_trajectory_does_not_depend_on_the_wrapper():
    results = []
    for hooked in (False, True):
        torch.manual_seed(0)
        x, closure = quadratic_problem()
        opt = tz.Optimizer([x], tz.m.SPSA(), tz.m.Adam(), tz.m.LR(0.05))
        if hooked:
            opt.register_step_pre_hook(lambda *a: None)
        losses = [float(opt.step(closure)) for _ in range(20)]
        results.append((losses, x.detach().clone()))
    assert results[0][0] == results[1][0] and torch.equal(results[0][1], results[1][1])


def test_lr_schedulers_see_the_optimizer_step():
    x, closure = quadratic_problem()
    opt = tz.Optimizer([x], tz.m.Adam(), tz.m.LR(0.1))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "lr_scheduler.step() before optimizer.step()" would raise
        for _ in range(3):
            opt.step(closure)
            sched.step()
    assert opt.param_groups[0]["lr"] == 0.1 * 0.5 ** 3
