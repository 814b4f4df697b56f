"""L-BFGS: the two-loop recursion, its options, get_H, convergence."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz


def quad(n=8, cond=100.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=g))
    A = q @ torch.diag(torch.logspace(0, math.log10(cond), n, dtype=torch.float64)) @ q.T
    b = torch.randn(n, dtype=torch.float64, generator=g)
    return A, b


def make(mods, x0):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([x], *mods)
    return x, opt


def stepper(x, opt, fn):
    def closure(backward=True):
        loss = fn(x)
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    return lambda: opt.step(closure)


def dense_lbfgs_H(S, Y, gamma):
    """H from the BFGS recursion applied to gamma I (reference formula, dense)."""
    n = S[0].numel()
    H = gamma * torch.eye(n, dtype=torch.float64)
    for s, y in zip(S, Y):
        rho = 1 / (s @ y)
        V = torch.eye(n, dtype=torch.float64) - rho * torch.outer(y, s)
        H = V.T @ H @ V + rho * torch.outer(s, s)
    return H


def test_two_loop_matches_dense_bfgs_recursion_and_get_H():
    A, b = quad()
    fn = lambda x: 0.5 * x @ A @ x - b @ x
    x, opt = make([tz.m.LBFGS(history_size=4), tz.m.LR(0.1)], [1.0] * 8)
    step = stepper(x, opt, fn)
    xs, gs = [], []
    for _ in range(7):
        xs.append(x.detach().clone())
        gs.append(A @ x.detach() - b)
        step()
    S = [xs[i + 1] - xs[i] for i in range(len(xs) - 1)][-4:]
    Y = [gs[i + 1] - gs[i] for i in range(len(gs) - 1)][-4:]
    gamma = float(S[-1] @ Y[-1] / (Y[-1] @ Y[-1]))
    H = dense_lbfgs_H(S, Y, gamma)
    lb = opt.modules[0]
    op = lb.get_H()
    g = A @ x.detach() - b
    assert torch.allclose(op.solve(g), H @ g, rtol=1e-9, atol=1e-12)
    # matvec is B = H^-1 (compact representation)
    assert torch.allclose(op.matvec(op.solve(g)), g, rtol=1e-7, atol=1e-10)
    assert torch.allclose(op.to_tensor(), torch.linalg.inv(H), rtol=1e-6, atol=1e-8)


def test_scale_first():
    x, opt = make([tz.m.LBFGS(), tz.m.LR(1.0)], [3.0, -4.0])
    stepper(x, opt, lambda x: (x ** 2).sum())()
    g = torch.tensor([6.0, -8.0], dtype=torch.float64)
    assert torch.allclose(x.detach(), torch.tensor([3.0, -4.0], dtype=torch.float64) - g / 14)
    # small gradients are not scaled up
    x, opt = make([tz.m.LBFGS(), tz.m.LR(1.0)], [0.01, 0.02])
    stepper(x, opt, lambda x: (x ** 2).sum())()
    assert torch.allclose(x.detach(), torch.tensor([-0.01, -0.02], dtype=torch.float64))
    x, opt = make([tz.m.LBFGS(scale_first=False), tz.m.LR(1.0)], [3.0, -4.0])
    stepper(x, opt, lambda x: (x ** 2).sum())()
    assert torch.allclose(x.detach(), torch.tensor([-3.0, 4.0], dtype=torch.float64))


def test_tolerances_and_restarts():
    A, b = quad(4)
    fn = lambda x: 0.5 * x @ A @ x - b @ x
    # sy_tol above every s.y: history never fills, so every step is the scaled gradient step
    x, opt = make([tz.m.LBFGS(sy_tol=1e10, scale_first=False), tz.m.LR(0.01)], [1.0] * 4)
    step = stepper(x, opt, fn)
    for _ in range(3):
        xb = x.detach().clone()
        step()
        assert torch.allclose(x.detach(), xb - 0.01 * (A @ xb - b))
    assert not opt.modules[0].global_state.get("s_history")
    # ptol: skipped pairs; ptol_restart clears the history
    for kw, key in [(dict(ptol=1e10), "ptol"), (dict(gtol=1e10), "gtol")]:
        x, opt = make([tz.m.LBFGS(**kw), tz.m.LR(0.01)], [1.0] * 4)
        step = stepper(x, opt, fn)
        for _ in range(3):
            step()
        assert not opt.modules[0].global_state.get("s_history"), key
    x, opt = make([tz.m.LBFGS(), tz.m.LR(0.01)], [1.0] * 4)
    step = stepper(x, opt, fn)
    for _ in range(3):
        step()
    assert len(opt.modules[0].global_state["s_history"]) == 2
    lb = opt.modules[0]
    lb.settings.defaults["ptol"] = 1e10
    lb.settings.defaults["ptol_restart"] = True
    lb.settings.invalidate()
    step()
    assert not lb.global_state.get("s_history")


def test_history_size_and_update_freq():
    A, b = quad(6)
    fn = lambda x: 0.5 * x @ A @ x - b @ x
    x, opt = make([tz.m.LBFGS(history_size=2), tz.m.LR(0.01)], [1.0] * 6)
    step = stepper(x, opt, fn)
    for _ in range(6):
        step()
    assert len(opt.modules[0].global_state["s_history"]) == 2
    x, opt = make([tz.m.LBFGS(update_freq=3), tz.m.LR(0.01)], [1.0] * 6)
    step = stepper(x, opt, fn)
    for _ in range(7):
        step()
    # updates at steps 0, 3, 6 -> two pairs
    assert len(opt.modules[0].global_state["s_history"]) == 2


@pytest.mark.parametrize("damping", ["powell", "double"])
def test_damping_keeps_positive_curvature_on_nonconvex(damping):
    fn = lambda x: (x[0] ** 2 - 1) ** 2 + 0.5 * x[1] ** 2 - 0.3 * torch.cos(3 * x[0])
    x, opt = make([tz.m.LBFGS(damping=damping, sy_tol=-1e10), tz.m.Backtracking()], [0.2, 1.0])
    step = stepper(x, opt, fn)
    for _ in range(30):
        step()
    for sy in opt.modules[0].global_state["sy_history"]:
        assert sy > 0
    assert float(fn(x.detach())) < float(fn(torch.tensor([0.2, 1.0], dtype=torch.float64)))


def test_inner_applied_after_history():
    A, b = quad(4)
    fn = lambda x: 0.5 * x @ A @ x - b @ x
    xa, oa = make([tz.m.LBFGS(inner=tz.m.Mul(2.0), scale_first=False), tz.m.LR(0.05)], [1.0] * 4)
    xb, ob = make([tz.m.LBFGS(scale_first=False), tz.m.LR(0.1)], [1.0] * 4)
    sa, sb = stepper(xa, oa, fn), stepper(xb, ob, fn)
    for _ in range(4):
        sa()
        sb()
    # history from the raw gradient, preconditioner applied to 2 g: one step of LR 0.05 == LR 0.1
    assert torch.allclose(xa.detach(), xb.detach())


def test_convergence():
    A, b = quad(10, 1e3)
    fn = lambda x: 0.5 * x @ A @ x - b @ x
    xstar = torch.linalg.solve(A, b)
    x, opt = make([tz.m.LBFGS(), tz.m.StrongWolfe()], [0.0] * 10)
    step = stepper(x, opt, fn)
    for _ in range(100):
        step()
    assert float(fn(x.detach()) - fn(xstar)) < 1e-8
    rosen = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    x, opt = make([tz.m.LBFGS(), tz.m.StrongWolfe()], [-1.2, 1.0])
    step = stepper(x, opt, rosen)
    for _ in range(60):
        step()
    assert float(rosen(x.detach())) < 1e-10


def test_several_tensors_equal_one_vector():
    A, b = quad(6)
    fn1 = lambda x: 0.5 * x @ A @ x - b @ x
    x, opt = make([tz.m.LBFGS(), tz.m.LR(0.1)], [1.0] * 6)
    xs = [torch.ones(2, dtype=torch.float64, requires_grad=True), torch.ones(2, 2, dtype=torch.float64, requires_grad=True)]
    opt2 = tz.Optimizer(xs, tz.m.LBFGS(), tz.m.LR(0.1))
    s1 = stepper(x, opt, fn1)
    cat = lambda: torch.cat([t.reshape(-1) for t in xs])

    def cl(backward=True):
        loss = fn1(cat())
        if backward:
            opt2.zero_grad()
            loss.backward()
        return loss
    for _ in range(5):
        s1()
        opt2.step(cl)
        assert torch.allclose(x.detach(), cat().detach(), rtol=1e-12, atol=1e-14)
