"""PerturbWeights, WeightDropout, Dropout, RandomReinitialize, EscapeAnnealing."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz
from torchzero.modules.perturbation.regularization import tensor_metric

X0 = torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=torch.float64)


def make(modules, x0=X0, groups=None):
    x = x0.clone().requires_grad_(True)
    points = []
    opt = tz.Optimizer(groups(x) if groups else [x], *modules)

    def closure(backward=True):
        points.append(x.detach().clone())
        loss = (x * x).sum()
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    return x, opt, closure, points


def test_perturb_weights_evaluates_at_a_relative_perturbation():
    x, opt, closure, points = make([tz.m.PerturbWeights(alpha=0.1), tz.m.LR(1.0)])
    torch.manual_seed(0)
    opt.step(closure)
    assert len(points) == 1
    e = points[0] - X0
    assert 0 < float(e.norm())
    # relative: e = alpha * mean|x| * d with d standard normal
    d = e / (0.1 * float(X0.abs().mean()))
    assert float(d.abs().max()) < 5
    # the gradient used is the one at the perturbed point
    assert torch.allclose(X0 - x.detach(), 2 * points[0])
    # a new perturbation each step
    opt.step(closure)
    assert not torch.allclose(points[1] - x.detach() * 0, points[0])


def test_perturb_weights_absolute_metric_distribution_and_group_switch():
    x, opt, closure, points = make([tz.m.PerturbWeights(alpha=0.5, relative=False, distribution="rademacher"), tz.m.LR(0.0)])
    opt.step(closure)
    assert torch.allclose((points[0] - X0).abs(), torch.full((4,), 0.5, dtype=torch.float64))
    a = torch.ones(3, dtype=torch.float64, requires_grad=True)
    b = torch.ones(2, dtype=torch.float64, requires_grad=True)
    seen = []

    def closure2(backward=True):
        seen.append((a.detach().clone(), b.detach().clone()))
        loss = (a * a).sum() + (b * b).sum()
        if backward:
            opt2.zero_grad()
            loss.backward()
        return loss
    opt2 = tz.Optimizer([{"params": [a]}, {"params": [b], "perturb": False}], tz.m.PerturbWeights(), tz.m.LR(0.0))
    opt2.step(closure2)
    assert not torch.equal(seen[0][0], torch.ones(3, dtype=torch.float64))
    assert torch.equal(seen[0][1], torch.ones(2, dtype=torch.float64))


def test_tensor_metrics():
    t = torch.tensor([3.0, -4.0])
    assert tensor_metric(t, "mad") == 3.5
    assert tensor_metric(t, "l2") == 5.0
    assert tensor_metric(t, "linf") == 4.0
    assert tensor_metric(t, "l1") == 7.0
    assert tensor_metric(t, "l0") == 2.0
    assert tensor_metric(t, 3.0) == pytest.approx((27 + 64) ** (1 / 3))
    assert tensor_metric(t, "sum") == -1.0
    assert tensor_metric(t, "var") == pytest.approx(12.25)


def test_weight_dropout_zeroes_weights_and_their_gradients():
    x, opt, closure, points = make([tz.m.WeightDropout(0.5), tz.m.LR(0.1)], x0=torch.ones(2000, dtype=torch.float64))
    torch.manual_seed(0)
    opt.step(closure)
    dropped = points[0] == 0
    assert 0.4 < float(dropped.double().mean()) < 0.6
    kept = ~dropped
    assert torch.equal(points[0][kept], torch.ones(int(kept.sum()), dtype=torch.float64))
    moved = x.detach() != 1
    assert torch.equal(moved, kept)  # dropped weights get no gradient
    with pytest.raises(ValueError, match="p"):
        tz.m.WeightDropout(1.0)


def test_weight_dropout_group_switch():
    a = torch.ones(50, dtype=torch.float64, requires_grad=True)
    b = torch.ones(50, dtype=torch.float64, requires_grad=True)
    seen = []

    def closure(backward=True):
        seen.append((a.detach().clone(), b.detach().clone()))
        loss = (a * a).sum() + (b * b).sum()
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    opt = tz.Optimizer([{"params": [a]}, {"params": [b], "use_dropout": False}], tz.m.WeightDropout(0.5), tz.m.LR(0.0))
    opt.step(closure)
    assert (seen[0][0] == 0).any() and (seen[0][1] == 1).all()


def test_dropout_and_graft():
    x = torch.ones(4000, dtype=torch.float64, requires_grad=True)
    for graft in (False, True):
        opt = tz.Optimizer([x], tz.m.Dropout(0.25, graft=graft), tz.m.LR(1.0))
        torch.manual_seed(0)
        opt.zero_grad()
        g = torch.arange(4000, dtype=torch.float64) / 4000 + 1
        x.grad = g.clone()
        before = x.detach().clone()
        opt.step()
        u = before - x.detach()
        zero = u == 0
        assert 0.22 < float(zero.double().mean()) < 0.28
        if graft:
            assert float(u.norm()) == pytest.approx(float(g.norm()))
        else:
            assert torch.equal(u[~zero], g[~zero])
        with torch.no_grad():
            x.copy_(before)


def test_random_reinitialize_resets_a_fraction_to_the_stored_values():
    x, opt, closure, _ = make([tz.m.RandomReinitialize(p_reinit=1.0, p_weights=0.5, seed=0), tz.m.LR(0.0)],
                              x0=torch.zeros(2000, dtype=torch.float64))
    opt.step(closure)  # stores x0 = 0
    with torch.no_grad():
        x.fill_(5.0)
    opt.step(closure)
    frac = float((x.detach() == 0).double().mean())
    assert 0.45 < frac < 0.55
    # never triggers with p_reinit = 0
    y, opt2, closure2, _ = make([tz.m.RandomReinitialize(p_reinit=0.0, p_weights=1.0), tz.m.LR(0.0)])
    opt2.step(closure2)
    with torch.no_grad():
        y.fill_(5.0)
    opt2.step(closure2)
    assert (y.detach() == 5).all()


def test_random_reinitialize_store_every_and_reset():
    x, opt, closure, _ = make([tz.m.RandomReinitialize(p_reinit=0.0, store_every=1, beta=0.5), tz.m.LR(0.0)],
                              x0=torch.zeros(3, dtype=torch.float64))
    opt.step(closure)
    with torch.no_grad():
        x.fill_(4.0)
    opt.step(closure)
    assert torch.allclose(opt.modules[0].state[x]["init"], torch.full((3,), 2.0, dtype=torch.float64))
    for reset, adam_steps in ((True, 1), (False, 3)):
        _, opt2, closure2, _ = make([tz.m.RandomReinitialize(p_reinit=1.0, p_weights=0.0, reset=reset, seed=1), tz.m.Adam(), tz.m.LR(0.1)])
        for _ in range(3):
            opt2.step(closure2)
        # with reset, Adam's state is cleared on every (here: each) reinitialization
        assert opt2.modules[1].global_state["step"] == adam_steps


def test_escape_annealing_finds_a_lower_point_after_a_stall():
    # a flat plateau at the start with a lower region nearby
    x = torch.tensor([0.0, 0.0], dtype=torch.float64, requires_grad=True)

    def fn(v):
        return torch.where(v.norm() < 0.3, torch.tensor(1.0, dtype=torch.float64), (v - 0.5).pow(2).sum())

    def closure(backward=True):
        loss = fn(x)
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    opt = tz.Optimizer([x], tz.m.LR(0.1), tz.m.EscapeAnnealing(max_region=1.0, max_iter=200, n_tol=2))
    torch.manual_seed(0)
    opt.step(closure)
    assert torch.equal(x.detach(), torch.zeros(2, dtype=torch.float64))  # one stalled step is not enough
    opt.step(closure)
    assert float(fn(x.detach())) < 1.0
    assert float(x.detach().norm()) >= 0.3


def test_escape_annealing_idle_when_moving():
    x, opt, closure, points = make([tz.m.LR(0.1), tz.m.EscapeAnnealing(n_tol=1)])
    for _ in range(3):
        opt.step(closure)
    assert opt.num_evaluations == 3
