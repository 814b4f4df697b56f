"""SVRG."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz

torch.manual_seed(0)
XD = torch.randn(40, 5, dtype=torch.float64)
YD = XD @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0], dtype=torch.float64) + 0.1 * torch.randn(40, dtype=torch.float64)
BATCHES = [(XD[i:i + 8], YD[i:i + 8]) for i in range(0, 40, 8)]


def batch_loss(w, b):
    X, y = BATCHES[b]
    return ((X @ w - y) ** 2).mean()


def full_loss(w):
    return ((XD @ w - YD) ** 2).mean()


def test_svrg_gradient_formula_and_phases():
    w = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([w], tz.m.SVRG(5, accum_steps=5, svrg_loss=True), tz.m.LR(0.05))
    moves, losses = [], []
    batch = [0]

    def closure(backward=True):
        loss = batch_loss(w, batch[0])
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    for epoch in range(2):
        for b in range(5):
            batch[0] = b
            before = w.detach().clone()
            evals = opt.num_evaluations
            losses.append(float(opt.step(closure)))
            moves.append((w.detach() - before, opt.num_evaluations - evals))
    # epoch 0: four accumulation steps that do not move, then the first SVRG step (at x0: the full gradient)
    assert all(not m.any() and n == 1 for m, n in moves[:4])
    w0 = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    g_full = torch.autograd.grad(full_loss(w0), w0)[0]
    assert torch.allclose(moves[4][0], -0.05 * g_full)
    assert moves[4][1] == 1
    # epoch 1: g = g_b(x) - (g_b(x0) - g_f(x0)), two evaluations per step
    x = (moves[4][0]).clone()
    for b in range(4):
        xr = x.clone().requires_grad_(True)
        gx = torch.autograd.grad(batch_loss(xr, b), xr)[0]
        g0 = torch.autograd.grad(batch_loss(w0, b), w0)[0]
        g = gx - (g0 - g_full)
        assert torch.allclose(moves[5 + b][0], -0.05 * g), b
        assert moves[5 + b][1] == 2
        f = float(batch_loss(x, b)) - (float(batch_loss(w0.detach(), b)) - float(full_loss(w0.detach())))
        assert losses[5 + b] == pytest.approx(f)
        x = x + moves[5 + b][0]


def test_svrg_reduces_the_variance_of_minibatch_gradients():
    # the spread of the SVRG gradient over batches, near the anchor, is far below the plain one
    w = torch.full((5,), 0.5, dtype=torch.float64, requires_grad=True)
    batch = [0]
    grads = []

    class Rec(tz.Module):
        def apply(self, objective):
            grads.append(objective.get_grads()[0].clone())
            return objective
    opt = tz.Optimizer([w], tz.m.SVRG(100, accum_steps=5), Rec(), tz.m.LR(0.0))

    def closure(backward=True):
        loss = batch_loss(w, batch[0])
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    for b in range(5):
        batch[0] = b
        opt.step(closure)
    with torch.no_grad():
        w.add_(0.05)
    for b in range(5):
        batch[0] = b
        opt.step(closure)
    svrg = torch.stack(grads[-5:])
    plain = torch.stack([torch.autograd.grad(batch_loss(wr, b), wr)[0]
                         for b in range(5) for wr in [w.detach().clone().requires_grad_(True)]])
    assert float(svrg.var(0).sum()) < 0.01 * float(plain.var(0).sum())


def test_svrg_full_closure_and_alpha():
    w = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([w], tz.m.SVRG(3, alpha=0.5), tz.m.LR(0.1))

    def full_closure():
        opt.zero_grad()
        loss = full_loss(w)
        loss.backward()
        return loss

    def closure(backward=True):
        loss = batch_loss(w, 1)
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    opt.step(closure, full_closure=full_closure)
    w0 = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    gf = torch.autograd.grad(full_loss(w0), w0)[0]
    gb = torch.autograd.grad(batch_loss(w0, 1), w0)[0]
    # at x = x0: g = g_b - 0.5 (g_b - g_f)
    assert torch.allclose(w.detach(), -0.1 * (gb - 0.5 * (gb - gf)))
    assert opt.num_evaluations == 1  # the full closure is the caller's, not counted as a closure call


def test_svrg_needs_a_closure_and_valid_arguments():
    w = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([w], tz.m.SVRG(3), tz.m.LR(0.1))
    full_loss(w).backward()
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()
    with pytest.raises(ValueError, match="svrg_steps"):
        tz.m.SVRG(0)


def test_svrg_with_spsa_estimates():
    # variance reduction of a gradient estimator: SPSA before SVRG
    w = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([w], tz.m.SPSA(h=1e-3, seed=0), tz.m.SVRG(10, accum_steps=2), tz.m.LR(0.02))

    def closure(backward=True):
        return full_loss(w)
    start = float(full_loss(w.detach()))
    for _ in range(60):
        opt.step(closure)
    assert float(full_loss(w.detach())) < 0.5 * start
