"""CD and GradientSampling."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz
from torchzero.modules.zeroth_order.cd import _coordinate

W = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
X0 = torch.tensor([1.0, -1.0, 0.5, 2.0], dtype=torch.float64)


def f(x):
    return 0.5 * (W * x * x).sum()


def run(modules, steps=1, x0=X0, fn=f):
    x = x0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], *modules)
    points = []

    def closure(backward=True):
        points.append(x.detach().clone())
        loss = fn(x)
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    moves = []
    for _ in range(steps):
        before = x.detach().clone()
        opt.step(closure)
        moves.append(x.detach() - before)
    return x, opt, moves, points


# ---------------------------------------------------------------------------- CD
def test_cd_index_orders_are_the_documented_ones():
    assert [_coordinate("cyclic", k, 3) for k in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    assert [_coordinate("cyclic2", k, 3) for k in range(9)] == [0, 1, 2, 2, 1, 0, 0, 1, 2]


def test_cd_visits_coordinates_in_order_and_moves_downhill():
    _, _, moves, _ = run([tz.m.CD(h=0.1, index="cyclic2", adaptive=False), tz.m.LR(0.05)], steps=8)
    coords = [int(m.nonzero()[0]) if m.any() else None for m in moves]
    assert coords == [0, 1, 2, 3, 3, 2, 1, 0]
    # grad=False: unit direction, so each move is lr along -sign(df/dx_i)
    assert torch.allclose(moves[0], torch.tensor([-0.05, 0, 0, 0], dtype=torch.float64))
    assert torch.allclose(moves[1], torch.tensor([0, 0.05, 0, 0], dtype=torch.float64))


def test_cd_grad_scales_by_the_central_difference():
    _, _, moves, _ = run([tz.m.CD(h=0.1, grad=True, index="cyclic"), tz.m.LR(0.1)], steps=2)
    # quadratic: central differences are exact: df/dx_0 = 1, df/dx_1 = -2
    assert torch.allclose(moves[0], torch.tensor([-0.1, 0, 0, 0], dtype=torch.float64))
    assert torch.allclose(moves[1], torch.tensor([0, 0.2, 0, 0], dtype=torch.float64))


def test_cd_twopoint_uses_forward_differences():
    _, opt, moves, points = run([tz.m.CD(h=0.1, grad=True, threepoint=False, index="cyclic"), tz.m.LR(0.1)], steps=1)
    assert len(points) == 2 and opt.num_evaluations == 2
    # (f(x + h e0) - f(x)) / h = x0 w0 + h w0 / 2 = 1.05
    assert torch.allclose(moves[0], torch.tensor([-0.105, 0, 0, 0], dtype=torch.float64))


def test_cd_adaptive_halves_h_when_the_minimum_is_bracketed():
    # at the minimum along e0, both sides are worse: no move, h halves; it grows back afterwards
    x0 = torch.tensor([0.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    x, opt, moves, points = run([tz.m.CD(h=0.2, index="cyclic"), tz.m.LR(0.1)], steps=1, x0=x0)
    cd = opt.modules[0]
    assert not moves[0].any()
    assert cd.state[x]["h_vec"].tolist() == [0.1, 0.2, 0.2, 0.2]
    _, opt2, moves2, _ = run([tz.m.CD(h=0.2, index="cyclic", adaptive=False), tz.m.LR(0.1)], steps=1, x0=x0)
    assert not moves2[0].any() and not opt2.modules[0].state


def test_cd_random_index_and_convergence():
    x, opt, _, _ = run([tz.m.CD(h=1e-3, grad=True, index="random"), tz.m.LR(0.2)], steps=200)
    assert float(f(x.detach())) < 1e-3 * float(f(X0))
    assert opt.num_evaluations == 600


def test_cd_bad_arguments_and_closure():
    with pytest.raises(ValueError, match="index"):
        tz.m.CD(index="diagonal")
    x = X0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], tz.m.CD(), tz.m.LR(0.1))
    f(x).backward()
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()


# ---------------------------------------------------------------------------- GradientSampling
def _gs_grads(**kw):
    """(update of one step with LR(1), the points evaluated)."""
    x, opt, moves, points = run([tz.m.GradientSampling(**kw), tz.m.LR(1.0)], steps=1)
    return -moves[0], points, opt


def test_gradient_sampling_mean_of_gradients_at_the_points():
    g, points, opt = _gs_grads(sigma=0.1, n=5, seed=0)
    assert len(points) == 6 and opt.num_evaluations == 6
    assert torch.equal(points[0], X0)  # include_x0
    expected = torch.stack([W * p for p in points]).mean(0)
    assert torch.allclose(g, expected)
    assert all(0 < float((p - X0).norm()) < 1.5 for p in points[1:])


def test_gradient_sampling_aggregates():
    for agg in ("max", "min", "min-norm", "min-value"):
        g, points, _ = _gs_grads(sigma=0.3, n=4, seed=1, aggregate=agg, include_x0=False)
        grads = torch.stack([W * p for p in points])
        if agg == "max":
            assert torch.allclose(g, grads.max(0).values)
        elif agg == "min":
            assert torch.allclose(g, grads.min(0).values)
        elif agg == "min-norm":
            assert torch.allclose(g, grads[grads.norm(dim=1).argmin()])
        else:
            assert torch.allclose(g, grads[torch.stack([f(p) for p in points]).argmin()])
    with pytest.raises(ValueError, match="aggregate"):
        tz.m.GradientSampling(aggregate="median")


def test_gradient_sampling_fixed_keeps_perturbations_until_termination():
    def offsets(fixed, term=None, steps=2):
        x, opt, _, points = run([tz.m.GradientSampling(sigma=0.1, n=2, include_x0=False, fixed=fixed, seed=0,
                                                       termination=term), tz.m.LR(0.0)], steps=steps)
        return [p - X0 for p in points], opt

    same, _ = offsets(True)
    assert torch.allclose(same[0], same[2]) and torch.allclose(same[1], same[3])
    fresh, _ = offsets(False)
    assert not torch.allclose(fresh[0], fresh[2])

    class Always(tz.Module):
        def apply(self, objective):
            objective.should_terminate = True
            return objective
    shrunk, opt = offsets(True, Always())
    assert not torch.allclose(shrunk[0], shrunk[2])
    assert opt.modules[0].global_state["sigma"] == pytest.approx(0.1 * 2 / 3)


def test_gradient_sampling_sigma_strategy():
    x, opt, _, _ = run([tz.m.GradientSampling(sigma=0.1, n=4, sigma_strategy="value", sigma_target=1, seed=0), tz.m.LR(0.01)], steps=1)
    assert opt.modules[0].global_state["sigma"] in (pytest.approx(0.1 * 4 / 3), pytest.approx(0.1 * 2 / 3))
    # around the minimum no sample is better: sigma shrinks
    x, opt, _, _ = run([tz.m.GradientSampling(sigma=0.1, n=4, sigma_strategy="grad-norm", seed=0), tz.m.LR(0.01)], steps=1,
                       x0=torch.zeros(4, dtype=torch.float64))
    assert opt.modules[0].global_state["sigma"] == pytest.approx(0.1 * 2 / 3)


def test_gradient_sampling_smooths_a_nonsmooth_function():
    # |x| has no useful gradient information at kinks; the sampled mean still converges to 0
    fn = lambda x: x.abs().sum()
    x, _, _, _ = run([tz.m.GradientSampling([tz.m.LR(0.05)], sigma=0.05, n=8, fixed=False, seed=0)], steps=60,
                     x0=torch.tensor([1.0, -0.7, 0.3, 0.0], dtype=torch.float64), fn=fn)
    assert float(fn(x.detach())) < 0.3


def test_gradient_sampling_with_plain_closure_and_no_closure():
    x = X0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], tz.m.GradientSampling(n=3, sigma=0.1, seed=0), tz.m.LR(0.1))

    def plain():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss
    for _ in range(5):
        opt.step(plain)
    assert float(f(x.detach())) < float(f(X0))
    f(x).backward()
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()
