"""Full-matrix adaptive methods: FullMatrixAdagrad. (GGT, MatrixMomentum and NaturalGradient are not
implemented yet: tz.m.missing() lists them.)"""
from __future__ import annotations

import pytest
import torch

import torchzero as tz

DT = torch.float64


def _problem():
    x = torch.tensor([0.5, -1.0, 2.0], dtype=DT, requires_grad=True)
    y = torch.tensor([[1.0, 0.2], [-0.3, 0.7]], dtype=DT, requires_grad=True)
    A = torch.tensor([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]], dtype=DT)
    f = lambda: 0.5 * x @ A @ x + (y ** 2).sum() + (x.sum() * y.sum()) ** 2 * 0.1
    return [x, y], f


def _grads(params, f):
    return torch.autograd.grad(f(), params)


def _step(opt, params, f):
    def closure(backward=True):
        loss = f()
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    return opt.step(closure)


def _matpow(M, p):
    L, Q = torch.linalg.eigh(M)
    return Q @ torch.diag(L.abs() ** p) @ Q.T


def test_full_matrix_adagrad_matches_formula():
    params, f = _problem()
    opt = tz.Optimizer(params, tz.m.FullMatrixAdagrad(reg=0.0), tz.m.LR(1.0))
    G = torch.eye(7, dtype=DT)
    for _ in range(3):
        g = torch.cat([t.reshape(-1) for t in _grads(params, f)])
        G = G + torch.outer(g, g)
        x_prev = torch.cat([p.detach().reshape(-1) for p in params])
        _step(opt, params, f)
        x_new = torch.cat([p.detach().reshape(-1) for p in params])
        assert torch.allclose(x_prev - x_new, _matpow(G, -0.5) @ g)


def test_per_tensor_accumulators_are_block_diagonal():
    params, f = _problem()
    g = _grads(params, f)
    x0 = [p.detach().clone() for p in params]
    opt = tz.Optimizer(params, tz.m.FullMatrixAdagrad(concat_params=False, init="zeros", reg=1e-3), tz.m.LR(1.0))
    _step(opt, params, f)
    for p, p0, gi in zip(params, x0, g):
        v = gi.reshape(-1)
        G = torch.outer(v, v) + 1e-3 * torch.eye(v.numel(), dtype=DT)
        assert torch.allclose((p0 - p.detach()).reshape(-1), _matpow(G, -0.5) @ v)


@pytest.mark.parametrize("init", ["identity", "zeros", "ones", "GGT"])
def test_init(init):
    params, f = _problem()
    g = torch.cat([t.reshape(-1) for t in _grads(params, f)])
    x0 = torch.cat([p.detach().reshape(-1) for p in params])
    opt = tz.Optimizer(params, tz.m.FullMatrixAdagrad(init=init, reg=1e-2, matrix_power=-1.0), tz.m.LR(1.0))
    _step(opt, params, f)
    start = {"identity": torch.eye(7, dtype=DT), "zeros": torch.zeros(7, 7, dtype=DT), "ones": torch.ones(7, 7, dtype=DT),
             "GGT": torch.zeros(7, 7, dtype=DT)}[init]
    G = start + torch.outer(g, g) + 1e-2 * torch.eye(7, dtype=DT)  # GGT: the first outer product once
    assert torch.allclose(x0 - torch.cat([p.detach().reshape(-1) for p in params]), torch.linalg.solve(G, g))


def test_beta_debias_and_precond_freq():
    params, f = _problem()
    opt = tz.Optimizer(params, tz.m.FullMatrixAdagrad(beta=0.5, reg=0.0, precond_freq=2), tz.m.LR(1.0))
    G = torch.eye(7, dtype=DT)
    P = None
    for t in range(1, 4):
        g = torch.cat([x.reshape(-1) for x in _grads(params, f)])
        G = 0.5 * G + 0.5 * torch.outer(g, g)
        if t % 2 == 1:
            P = _matpow(G / (1 - 0.5 ** t), -0.5)
        x_prev = torch.cat([p.detach().reshape(-1) for p in params])
        _step(opt, params, f)
        assert torch.allclose(x_prev - torch.cat([p.detach().reshape(-1) for p in params]), P @ g)


def test_inner_and_accumulator_tfm():
    outs = []
    for kw in [{}, dict(inner=tz.m.Sign()), dict(accumulator_tfm=tz.m.Mul(4.0))]:
        params, f = _problem()
        opt = tz.Optimizer(params, tz.m.FullMatrixAdagrad(**kw), tz.m.LR(0.1))
        _step(opt, params, f)
        outs.append(torch.cat([p.detach().reshape(-1) for p in params]))
    assert not torch.allclose(outs[0], outs[1])
    # accumulator * 4 halves the step of G^{-1/2}
    params, f = _problem()
    x0 = torch.cat([p.detach().reshape(-1) for p in params])
    opt = tz.Optimizer(params, tz.m.FullMatrixAdagrad(), tz.m.LR(0.1))
    _step(opt, params, f)
    assert torch.allclose(x0 - outs[2], (x0 - outs[0]) / 2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="init"):
        tz.m.FullMatrixAdagrad(init="random")
    with pytest.raises(ValueError, match="matrix_power_method"):
        tz.m.FullMatrixAdagrad(matrix_power_method="qr")
    with pytest.raises(ValueError, match="precond_freq"):
        tz.m.FullMatrixAdagrad(precond_freq=0)


def test_converges():
    params, f = _problem()
    opt = tz.Optimizer(params, tz.m.FullMatrixAdagrad(), tz.m.LR(0.5))
    losses = [float(_step(opt, params, f).detach()) for _ in range(60)]
    assert losses[-1] < 1e-2 * losses[0]
