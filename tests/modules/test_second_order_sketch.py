"""Sketched second-order methods: SubspaceNewton."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz

DT = torch.float64


def _quadratic(n: int = 6, cond: float = 50.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
    A = q @ torch.diag(torch.logspace(0, math.log10(cond), n, dtype=DT)) @ q.T
    b = torch.randn(n, generator=g, dtype=DT)
    x = torch.zeros(n, dtype=DT, requires_grad=True)
    return x, A, b, (lambda: 0.5 * x @ A @ x - b @ x)


def _quartic():
    x = torch.tensor([0.7, -0.4, 1.2], dtype=DT, requires_grad=True)
    return x, lambda: (x ** 4).sum() / 4 + 0.1 * x[0] * x[1] * x[2] + torch.exp(0.3 * x[0]) + 0.5 * (x ** 2).sum()


def _run(opt, f, steps: int) -> list[float]:
    losses = []

    def closure(backward: bool = True):
        loss = f()
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss

    for _ in range(steps):
        losses.append(float(torch.as_tensor(opt.step(closure)).detach()))
    return losses


@pytest.mark.parametrize("sketch_type", ["orthonormal", "rows", "topk", "rademacher", "mixed", "common_directions"])
def test_full_dimensional_subspace_is_newton(sketch_type):
    # with k = n the subspace is the whole space (rademacher: an invertible basis), so one step
    # solves a quadratic exactly, like Newton
    x, A, b, f = _quadratic()
    opt = tz.Optimizer([x], tz.m.SubspaceNewton(sketch_size=6, sketch_type=sketch_type, seed=1))
    if sketch_type == "common_directions":  # the basis grows by one gradient per step: n steps
        _run(opt, f, 6)
    else:
        _run(opt, f, 1)
    assert torch.allclose(x.detach(), torch.linalg.solve(A, b), atol=1e-8)


def test_full_dimensional_matches_newton_on_nonquadratic():
    x1, f1 = _quartic()
    x2, f2 = _quartic()
    o1 = tz.Optimizer([x1], tz.m.SubspaceNewton(sketch_size=3, sketch_type="orthonormal", seed=0), tz.m.LR(0.7))
    o2 = tz.Optimizer([x2], tz.m.Newton(), tz.m.LR(0.7))
    for _ in range(4):
        _run(o1, f1, 1)
        _run(o2, f2, 1)
        assert torch.allclose(x1.detach(), x2.detach(), atol=1e-10)


def test_one_dimensional_subspace_is_exact_line_search_on_gradient():
    # k = 1 along the gradient: the step is g (g^T g) / (g^T A g)
    x, A, b, f = _quadratic()
    opt = tz.Optimizer([x], tz.m.SubspaceNewton(sketch_size=1))
    g = -b
    _run(opt, f, 1)
    expected = -g * (g @ g) / (g @ A @ g)
    assert torch.allclose(x.detach(), expected, atol=1e-12)


@pytest.mark.parametrize("sketch_type", ["orthonormal", "rows", "topk", "rademacher", "mixed", "common_directions"])
def test_small_subspace_converges(sketch_type):
    x, A, b, f = _quadratic(n=8, cond=10.0)
    opt = tz.Optimizer([x], tz.m.SubspaceNewton(sketch_size=3, sketch_type=sketch_type, seed=0))
    losses = _run(opt, f, 40)
    fstar = float(-0.5 * b @ torch.linalg.solve(A, b))
    assert losses[-1] - fstar < 1e-3 * (losses[0] - fstar)


def test_seed_reproducible():
    outs = []
    for _ in range(2):
        x, A, b, f = _quadratic()
        opt = tz.Optimizer([x], tz.m.SubspaceNewton(sketch_size=2, sketch_type="orthonormal", seed=3))
        _run(opt, f, 3)
        outs.append(x.detach().clone())
    assert torch.equal(outs[0], outs[1])


def test_common_directions_basis_orthonormal_and_bounded():
    x, A, b, f = _quadratic(n=8)
    m = tz.m.SubspaceNewton(sketch_size=3)
    opt = tz.Optimizer([x], m, tz.m.LR(0.5))
    for i in range(6):
        _run(opt, f, 1)
        S = m.global_state["directions"]
        assert S.shape[1] == min(i + 1, 3)
        assert torch.allclose(S.T @ S, torch.eye(S.shape[1], dtype=DT), atol=1e-10)


@pytest.mark.parametrize("hvp_method", ["autograd", "fd_forward", "fd_central"])
def test_hvp_methods_agree(hvp_method):
    x1, f1 = _quartic()
    x2, f2 = _quartic()
    o1 = tz.Optimizer([x1], tz.m.SubspaceNewton(sketch_size=2, sketch_type="topk"))
    o2 = tz.Optimizer([x2], tz.m.SubspaceNewton(sketch_size=2, sketch_type="topk", hvp_method=hvp_method, h=1e-5))
    _run(o1, f1, 2)
    _run(o2, f2, 2)
    assert torch.allclose(x1.detach(), x2.detach(), atol=1e-5)


def test_options_change_the_step():
    def step(**kw):
        x, f = _quartic()
        _run(tz.Optimizer([x], tz.m.SubspaceNewton(sketch_size=3, sketch_type="topk", **kw)), f, 1)
        return x.detach()

    base = step()
    assert not torch.allclose(base, step(damping=1.0))
    assert not torch.allclose(base, step(truncate=1))
    assert torch.allclose(base, step(use_lstsq=True), atol=1e-10)
    assert torch.allclose(base, step(precompute_inverse=True), atol=1e-10)
    assert torch.allclose(base, step(eigval_fn=torch.abs), atol=1e-10)  # convex here


def test_update_freq_reuses_basis():
    x, A, b, f = _quadratic()
    m = tz.m.SubspaceNewton(sketch_size=2, sketch_type="orthonormal", update_freq=3, seed=0)
    opt = tz.Optimizer([x], m)
    _run(opt, f, 1)
    S = m.global_state["S"].clone()
    _run(opt, f, 2)
    assert torch.equal(S, m.global_state["S"])
    _run(opt, f, 1)
    assert not torch.equal(S, m.global_state["S"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="sketch_type"):
        tz.m.SubspaceNewton(sketch_type="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sketch_size"):
        tz.m.SubspaceNewton(sketch_size=0)
