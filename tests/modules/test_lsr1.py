"""L-SR1: the limited-memory SR1 matrix, get_H, options, convergence."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz
from closures import ExactQuadraticStep, rosenbrock_problem, run_quadratic, run_steps, spd_quadratic


def dense_sr1(S, Y):
    n = S[0].numel()
    H = torch.eye(n, dtype=torch.float64)
    for s, y in zip(S, Y):
        z = s - H @ y
        d = z @ y
        if abs(d) > 1e-8 * z.norm() * y.norm():
            H = H + torch.outer(z, z) / d
    return H


def test_matches_dense_sr1_and_get_H():
    A, b = spd_quadratic(6)
    m = tz.m.LSR1(history_size=3)
    traj, opt = run_quadratic([m, tz.m.LR(0.05)], A, b, 6)
    gs = m.global_state
    S, Y = gs["s_history"], gs["y_history"]
    assert len(S) == 3
    H = dense_sr1(S, Y)
    op = m.get_H()
    v = torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(op.solve(v), H @ v, rtol=1e-10)
    assert torch.allclose(op.matvec(op.solve(v)), v, rtol=1e-8, atol=1e-10)
    # the step taken was H g at the previous point
    x_prev = traj[-2]
    g = A @ x_prev - b
    assert torch.allclose(traj[-1], x_prev - 0.05 * (H @ g), rtol=1e-9, atol=1e-12)


def test_get_H_before_first_step_is_none():
    assert tz.m.LSR1().get_H() is None


def test_quadratic_termination_with_exact_line_search():
    # SR1 with exact line searches on a quadratic: H = A^-1 after n independent steps
    n = 6
    A, b = spd_quadratic(n)
    xs = torch.linalg.solve(A, b)
    traj, _ = run_quadratic([tz.m.LSR1(history_size=n), ExactQuadraticStep(A)], A, b, n + 1)
    assert float((traj[-1] - xs).norm() / xs.norm()) < 1e-8


def test_rosenbrock_with_line_search():
    x, f = rosenbrock_problem()
    run_steps(tz.Optimizer([x], tz.m.LSR1(), tz.m.StrongWolfe(c2=0.1, fallback=True)), f, 100)
    assert float(f().detach()) < 1e-6


def test_scale_first():
    A, b = spd_quadratic(4)
    a, _ = run_quadratic([tz.m.LSR1(scale_first=True), tz.m.LR(1.0)], A, b, 1)
    c, _ = run_quadratic([tz.m.LSR1(), tz.m.LR(1.0)], A, b, 1)
    x0 = torch.linspace(-1, 1, 4, dtype=torch.float64)
    g = A @ x0 - b
    assert torch.allclose(a[0], x0 - g / g.abs().sum())
    assert torch.allclose(c[0], x0 - g)


def test_history_size_and_ptol():
    A, b = spd_quadratic(5)
    m = tz.m.LSR1(history_size=2)
    run_quadratic([m, tz.m.LR(0.05)], A, b, 6)
    assert len(m.global_state["s_history"]) == 2
    m = tz.m.LSR1(ptol=1e9)  # every step is smaller: no pair is ever stored
    traj, _ = run_quadratic([m, tz.m.LR(0.05)], A, b, 4)
    assert not m.global_state.get("s_history")
    gd, _ = run_quadratic([tz.m.LR(0.05)], A, b, 4)
    assert torch.allclose(traj[-1], gd[-1])
    m = tz.m.LSR1(gtol=1e9, gtol_restart=True)
    run_quadratic([m, tz.m.LR(0.05)], A, b, 4)
    assert not m.global_state.get("s_history")


def test_damping_changes_pairs():
    A, b = spd_quadratic(5)
    A = A * 0.01  # curvature below 0.2: Powell's damping (with B_0 = I) modifies the pairs
    a, _ = run_quadratic([tz.m.LSR1(damping="powell"), tz.m.LR(1.0)], A, b, 5)
    c, _ = run_quadratic([tz.m.LSR1(), tz.m.LR(1.0)], A, b, 5)
    assert all(torch.isfinite(t).all() for t in a)
    assert not torch.allclose(a[-1], c[-1])
    with pytest.raises(ValueError, match="damping"):
        tz.m.LSR1(damping="bogus")


def test_closure_counts_and_no_closure():
    A, b = spd_quadratic(5)
    a, opt = run_quadratic([tz.m.LSR1(), tz.m.LR(0.05)], A, b, 5)
    assert opt.num_evaluations == 5
    c, _ = run_quadratic([tz.m.LSR1(), tz.m.LR(0.05)], A, b, 5, closure=False)
    assert all(torch.equal(x, y) for x, y in zip(a, c))
