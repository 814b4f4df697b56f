"""Termination criteria and ``Optimizer.should_terminate``."""
from __future__ import annotations

import io

import pytest
import torch

import torchzero as tz


def quad_problem(x0=(1.0, -2.0, 3.0)):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    return x, lambda: (x ** 2).sum()


def run_until_done(mods, max_steps=200, x0=(1.0, -2.0, 3.0), closure=True):
    x, fn = quad_problem(x0)
    opt = tz.Optimizer([x], *mods)

    def cl(backward=True):
        loss = fn()
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    steps = 0
    while not opt.should_terminate and steps < max_steps:
        if closure:
            opt.step(cl)
        else:
            opt.zero_grad()
            fn().backward()
            opt.step()
        steps += 1
    return steps, opt, x


def test_after_n_steps_stops_after_exactly_n_steps():
    for n in (1, 3, 7):
        steps, opt, _ = run_until_done([tz.m.LR(0.1), tz.m.TerminateAfterNSteps(n)])
        assert steps == n and opt.should_terminate


def test_after_n_evaluations():
    steps, opt, _ = run_until_done([tz.m.LR(0.1), tz.m.TerminateAfterNEvaluations(5)])
    assert steps == 5 and opt.num_evaluations == 5
    # without a closure each step's gradient counts as one evaluation (the reference never stops here)
    steps, opt, _ = run_until_done([tz.m.LR(0.1), tz.m.TerminateAfterNEvaluations(4)], closure=False)
    assert steps == 4
    # evaluations made by modules before the criterion count in the same step
    steps, opt, _ = run_until_done([tz.m.LR(0.1), tz.m.NegateOnLossIncrease(), tz.m.TerminateAfterNEvaluations(6)])
    assert steps == 3 and opt.num_evaluations == 6


def test_after_n_seconds_uses_the_given_clock():
    t = [0.0]

    def clock():
        t[0] += 1.0
        return t[0]
    steps, _, _ = run_until_done([tz.m.LR(0.1), tz.m.TerminateAfterNSeconds(4.5, sec_fn=clock)])
    assert steps == 6  # first call starts the clock at 1; the 6th reads 6, 5 seconds later


def test_gradient_norm_needs_n_consecutive_steps():
    # x = 0.1: |g| = 0.2 < tol from the start; SGD with lr 0 never moves
    steps, opt, _ = run_until_done([tz.m.TerminateByGradientNorm(tol=1.0, n=3), tz.m.LR(0.0)], x0=(0.1,))
    assert steps == 3
    steps, _, x = run_until_done([tz.m.TerminateByGradientNorm(tol=1e-6, n=1), tz.m.LR(0.25)])
    assert float(x.detach().norm()) <= 1e-6 * 2  # stopped once the gradient was small
    crit = tz.m.TerminateByGradientNorm(tol=1.0, n=2, ord="linf")
    assert crit.tol == 1.0 and crit.ord == "linf"


def test_counter_resets_when_the_condition_stops_holding():
    crit = tz.m.TerminateByGradientNorm(tol=1.0, n=2)
    x = torch.zeros(1)
    seq = [0.5, 2.0, 0.5, 0.5, 0.5, 3.0]
    flags = []
    for gv in seq:
        obj = tz.Objective([x])
        obj.grads = [torch.tensor([gv])]
        crit.step(obj)
        flags.append(obj.should_terminate)
    assert flags == [False, False, False, True, True, False]


def test_update_norm_measures_parameter_change():
    # lr 0.5 on sum(x^2) jumps to the minimum in one step: then the steps are zero
    steps, _, x = run_until_done([tz.m.LR(0.5), tz.m.TerminateByUpdateNorm(tol=1e-12, n=2)])
    assert steps == 4 and torch.equal(x.detach(), torch.zeros(3, dtype=torch.float64))
    steps, _, _ = run_until_done([tz.m.TerminateByUpdateNorm(tol=1e-12, n=2), tz.m.LR(0.5)])
    assert steps == 4  # position in the chain does not matter


def test_loss_reached_and_no_improvement():
    steps, opt, x = run_until_done([tz.m.LR(0.1), tz.m.TerminateOnLossReached(1.0)])
    losses = []
    y = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    for _ in range(steps):
        losses.append(float((y ** 2).sum()))
        y = y * 0.8
    assert losses[-1] <= 1.0 < losses[-2]
    # lr 1 on sum(x^2) oscillates between x and -x: no improvement after the first step
    steps, _, _ = run_until_done([tz.m.LR(1.0), tz.m.TerminateOnNoImprovement(n=4)])
    assert steps == 5
    # improvements smaller than tol do not count
    steps, _, _ = run_until_done([tz.m.LR(0.01), tz.m.TerminateOnNoImprovement(tol=100.0, n=3)])
    assert steps == 4
    with pytest.raises(RuntimeError, match="closure"):
        run_until_done([tz.m.LR(0.1), tz.m.TerminateOnLossReached(1.0)], closure=False)


def test_all_any_never_and_several_criteria():
    steps, _, _ = run_until_done([tz.m.LR(0.1), tz.m.TerminateAny(tz.m.TerminateAfterNSteps(7), tz.m.TerminateAfterNSteps(3))])
    assert steps == 3
    steps, _, _ = run_until_done([tz.m.LR(0.1), tz.m.TerminateAll(tz.m.TerminateAfterNSteps(7), tz.m.TerminateAfterNSteps(3))])
    assert steps == 7
    steps, _, _ = run_until_done([tz.m.LR(0.1), tz.m.TerminateNever()], max_steps=20)
    assert steps == 20
    # two criteria in one chain act as "any"
    steps, _, _ = run_until_done([tz.m.LR(0.1), tz.m.TerminateAfterNSteps(5), tz.m.TerminateAfterNSteps(2)])
    assert steps == 2
    with pytest.raises(TypeError):
        tz.m.TerminateAny(tz.m.LR(0.1))


def test_criteria_do_not_change_the_update():
    a = run_until_done([tz.m.LR(0.1)], max_steps=5)[2]
    b = run_until_done([tz.m.LR(0.1), tz.m.TerminateByGradientNorm(0.0), tz.m.TerminateNever()], max_steps=5)[2]
    torch.testing.assert_close(a, b, rtol=1e-15, atol=1e-15)  # LR alone fuses the step: rounding only


def test_should_terminate_survives_state_dict():
    _, opt, x = run_until_done([tz.m.LR(0.1), tz.m.TerminateAfterNSteps(2)])
    assert opt.should_terminate
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    y = x.detach().clone().requires_grad_(True)
    opt2 = tz.Optimizer([y], tz.m.LR(0.1), tz.m.TerminateAfterNSteps(2))
    opt2.load_state_dict(torch.load(buf, weights_only=True))
    assert opt2.should_terminate
