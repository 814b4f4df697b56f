"""Sketched second-order methods: SubspaceNewton."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz
from closures import quadratic_problem, quartic_problem, run_steps

DT = torch.float64


@pytest.mark.parametrize("sketch_type", ["orthonormal", "rows", "topk", "rademacher", "mixed", "common_directions"])
def test_full_dimensional_subspace_is_newton(sketch_type):
    # with k = n the subspace is the whole space (rademacher: an invertible basis), so one step
    # solves a quadratic exactly, like Newton
    x, A, b, f = quadratic_problem(6, cond=50.0)
    opt = tz.Optimizer([x], tz.m.SubspaceNewton(sketch_size=6, sketch_type=sketch_type, seed=1))
    if sketch_type == "common_directions":  # the basis grows by one gradient per step: n steps
        run_steps(opt, f, 6)
    else:
        run_steps(opt, f, 1)
    assert torch.allclose(x.detach(), torch.linalg.solve(A, b), atol=1e-8)


def test_full_dimensional_matches_newton_on_nonquadratic():
    x1, f1 = quartic_problem()
    x2, f2 = quartic_problem()
    o1 = tz.Optimizer([x1], tz.m.SubspaceNewton(sketch_size=3, sketch_type="orthonormal", seed=0), tz.m.LR(0.7))
    o2 = tz.Optimizer([x2], tz.m.Newton(), tz.m.LR(0.7))
    for _ in range(4):
        run_steps(o1, f1, 1)
        run_steps(o2, f2, 1)
        assert torch.allclose(x1.detach(), x2.detach(), atol=1e-10)


def test_one_dimensional_subspace_is_exact_line_search_on_gradient():
    # k = 1 along the gradient: the step is g (g^T g) / (g^T A g)
    x, A, b, f = quadratic_problem(6, cond=50.0)
    opt = tz.Optimizer([x], tz.m.SubspaceNewton(sketch_size=1))
    g = -b
    run_steps(opt, f, 1)
    expected = -g * (g @ g) / (g @ A @ g)
    assert torch.allclose(x.detach(), expected, atol=1e-12)


@pytest.mark.parametrize("sketch_type", ["orthonormal", "rows", "topk", "rademacher", "mixed", "common_directions"])
def test_small_subspace_converges(sketch_type):
    x, A, b, f = quadratic_problem(8, cond=10.0)
    opt = tz.Optimizer([x], tz.m.SubspaceNewton(sketch_size=3, sketch_type=sketch_type, seed=0))
    losses = run_steps(opt, f, 40)
    fstar = float(-0.5 * b @ torch.linalg.solve(A, b))
    assert losses[-1] - fstar < 1e-3 * (losses[0] - fstar)


def test_seed_reproducible():
    outs = []
    for _ in range(2):
        x, A, b, f = quadratic_problem(6, cond=50.0)
        opt = tz.Optimizer([x], tz.m.SubspaceNewton(sketch_size=2, sketch_type="orthonormal", seed=3))
        run_steps(opt, f, 3)
        outs.append(x.detach().clone())
    assert torch.equal(outs[0], outs[1])


def test_common_directions_basis_orthonormal_and_bounded():
    x, A, b, f = quadratic_problem(8, cond=50.0)
    m = tz.m.SubspaceNewton(sketch_size=3)
    opt = tz.Optimizer([x], m, tz.m.LR(0.5))
    for i in range(6):
        run_steps(opt, f, 1)
        S = m.global_state["directions"]
        assert S.shape[1] == min(i + 1, 3)
        assert torch.allclose(S.T @ S, torch.eye(S.shape[1], dtype=DT), atol=1e-10)


@pytest.mark.parametrize("hvp_method", ["autograd", "fd_forward", "fd_central"])
def test_hvp_methods_agree(hvp_method):
    x1, f1 = quartic_problem()
    x2, f2 = quartic_problem()
    o1 = tz.Optimizer([x1], tz.m.SubspaceNewton(sketch_size=2, sketch_type="topk"))
    o2 = tz.Optimizer([x2], tz.m.SubspaceNewton(sketch_size=2, sketch_type="topk", hvp_method=hvp_method, h=1e-5))
    run_steps(o1, f1, 2)
    run_steps(o2, f2, 2)
    assert torch.allclose(x1.detach(), x2.detach(), atol=1e-5)


def test_options_change_the_step():
    def step(**kw):
        x, f = quartic_problem()
        run_steps(tz.Optimizer([x], tz.m.SubspaceNewton(sketch_size=3, sketch_type="topk", **kw)), f, 1)
        return x.detach()

    base = step()
    assert not torch.allclose(base, step(damping=1.0))
    assert not torch.allclose(base, step(truncate=1))
    assert torch.allclose(base, step(use_lstsq=True), atol=1e-10)
    assert torch.allclose(base, step(precompute_inverse=True), atol=1e-10)
    assert torch.allclose(base, step(eigval_fn=torch.abs), atol=1e-10)  # convex here


def test_update_freq_reuses_basis():
    x, A, b, f = quadratic_problem(6, cond=50.0)
    m = tz.m.SubspaceNewton(sketch_size=2, sketch_type="orthonormal", update_freq=3, seed=0)
    opt = tz.Optimizer([x], m)
    run_steps(opt, f, 1)
    S = m.global_state["S"].clone()
    run_steps(opt, f, 2)
    assert torch.equal(S, m.global_state["S"])
    run_steps(opt, f, 1)
    assert not torch.equal(S, m.global_state["S"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="sketch_type"):
        tz.m.SubspaceNewton(sketch_type="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sketch_size"):
        tz.m.SubspaceNewton(sketch_size=0)


# ---------------------------------------------------------------- Nystrom

def _lowrank_quadratic(n: int = 8, r: int = 3, seed: int = 0):
    # H = Q diag(big..., small...) Q^T: a fast-decaying spectrum, as the Nystrom methods assume
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
    eig = torch.cat([torch.tensor([100.0, 30.0, 10.0], dtype=DT)[:r], torch.full((n - r,), 1e-3, dtype=DT)])
    A = q @ torch.diag(eig) @ q.T
    b = torch.randn(n, generator=g, dtype=DT)
    x = torch.zeros(n, dtype=DT, requires_grad=True)
    return x, A, b, (lambda: 0.5 * x @ A @ x - b @ x)


def test_nystrom_recovers_lowrank_hessian():
    from torchzero.modules.second_order.nystrom import nystrom
    x, A, b, f = _lowrank_quadratic(r=3)
    Omega = torch.linalg.qr(torch.randn(8, 5, dtype=DT, generator=torch.Generator().manual_seed(0)))[0]
    L, U = nystrom(A @ Omega, Omega)
    assert torch.allclose((U * L) @ U.T, A, atol=1e-2)
    assert torch.allclose(L[:3], torch.tensor([100.0, 30.0, 10.0], dtype=DT), rtol=1e-3)


def test_sketch_and_solve_full_rank_is_newton():
    x, A, b, f = quadratic_problem(6, cond=50.0)
    opt = tz.Optimizer([x], tz.m.NystromSketchAndSolve(rank=6, reg=None, seed=0))
    run_steps(opt, f, 1)
    assert torch.allclose(x.detach(), torch.linalg.solve(A, b), atol=1e-6)


def test_sketch_and_solve_reg_formula():
    x, A, b, f = quadratic_problem(6, cond=50.0)
    reg = 0.5
    opt = tz.Optimizer([x], tz.m.NystromSketchAndSolve(rank=6, reg=reg, seed=0))
    run_steps(opt, f, 1)
    assert torch.allclose(x.detach(), torch.linalg.solve(A + reg * torch.eye(6, dtype=DT), b), atol=1e-6)


def test_sketch_and_solve_options_and_convergence():
    def step(**kw):
        x, A, b, f = _lowrank_quadratic()
        run_steps(tz.Optimizer([x], tz.m.NystromSketchAndSolve(rank=4, seed=0, **kw)), f, 1)
        return x.detach()

    base = step()
    for kw in (dict(damping=1.0), dict(rdamping=0.1), dict(truncate=1), dict(eigv_tol=0.2), dict(reg=1.0),
               dict(hvp_method="autograd")):
        s = step(**kw)
        assert torch.isfinite(s).all()
        if "hvp_method" in kw:
            assert torch.allclose(s, base, atol=1e-8)
        else:
            assert not torch.allclose(s, base), kw
    x, A, b, f = quadratic_problem(8, cond=10.0)
    # outside the sketch the step is u / reg: gradient descent with step 1/reg, which contracts for reg > L_max / 2
    losses = run_steps(tz.Optimizer([x], tz.m.NystromSketchAndSolve(rank=3, reg=10.0, seed=0)), f, 40)
    fstar = float(-0.5 * b @ torch.linalg.solve(A, b))
    assert losses[-1] - fstar < 1e-2 * (losses[0] - fstar)


@pytest.mark.parametrize("rank", [2, 8])
def test_nystrom_pcg_solves_newton_system(rank):
    x, A, b, f = _lowrank_quadratic()
    reg = 1e-6
    opt = tz.Optimizer([x], tz.m.NystromPCG(rank=rank, reg=reg, seed=0))
    run_steps(opt, f, 1)
    assert torch.allclose(x.detach(), torch.linalg.solve(A + reg * torch.eye(8, dtype=DT), b), rtol=1e-5, atol=1e-5)


def test_nystrom_pcg_preconditioner_cuts_iterations():
    # with the top-3 eigenpairs captured, P^-1 (A + reg I) has a tiny condition number: CG needs
    # far fewer products than without a good preconditioner (fd_forward: one gradient per product)
    counts = {}
    for rank in (1, 4):
        x, A, b, f = _lowrank_quadratic()
        m = tz.m.NystromPCG(rank=rank, reg=1e-2, tol=1e-8, hvp_method="fd_forward", h=1e-6, seed=0)
        opt = tz.Optimizer([x], m)
        n_calls = [0]

        def f2():
            n_calls[0] += 1
            return f()

        run_steps(opt, f2, 1)
        counts[rank] = n_calls[0]
        assert torch.allclose(x.detach(), torch.linalg.solve(A + 1e-2 * torch.eye(8, dtype=DT), b), rtol=1e-4, atol=1e-4)
    assert counts[4] < counts[1]


def test_nystrom_bad_arguments():
    with pytest.raises(ValueError, match="rank"):
        tz.m.NystromSketchAndSolve(rank=0)
    with pytest.raises(ValueError, match="rank"):
        tz.m.NystromPCG(rank=0)
