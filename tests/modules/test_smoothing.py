"""smoothing/laplacian.py: LaplacianSmoothing (issue 7)."""
from __future__ import annotations

import torch

import torchzero as tz

DT = torch.float64


def dense_smooth(v: torch.Tensor, sigma: float) -> torch.Tensor:
    """Solves (I - sigma L) x = v with the dense periodic Laplacian."""
    n = v.numel()
    L = -2 * torch.eye(n, dtype=DT)
    for i in range(n):
        L[i, (i - 1) % n] += 1
        L[i, (i + 1) % n] += 1
    return torch.linalg.solve(torch.eye(n, dtype=DT) - sigma * L, v.reshape(-1)).reshape(v.shape)


def once(modules, grads):
    ps = [torch.zeros_like(g).requires_grad_(True) for g in grads]
    opt = tz.Optimizer(ps, *modules)
    for p, g in zip(ps, grads):
        p.grad = g.clone()
    opt.step()
    return [-p.detach() for p in ps]


def test_matches_dense_solve_per_parameter() -> None:
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(s, generator=g, dtype=DT) for s in [(7,), (2, 3), (3,), (2,), ()]]
    out = once([tz.m.LaplacianSmoothing(sigma=0.7, min_numel=2)], grads)
    for o, x in zip(out[:4], grads[:4]):
        assert torch.allclose(o, dense_smooth(x, 0.7))
    assert torch.equal(out[4], grads[4])


def test_min_numel_is_inclusive_and_layerwise_false() -> None:
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(4, generator=g, dtype=DT), torch.randn(3, generator=g, dtype=DT)
    oa, ob = once([tz.m.LaplacianSmoothing()], [a, b])
    # the reference smooths only parameters with more than min_numel elements
    assert torch.allclose(oa, dense_smooth(a, 1.0)) and torch.equal(ob, b)
    oa, ob = once([tz.m.LaplacianSmoothing(sigma=0.5, layerwise=False)], [a, b])
    full = dense_smooth(torch.cat([a, b]), 0.5)
    assert torch.allclose(torch.cat([oa, ob]), full)


def test_smoothing_keeps_mean_and_reduces_variation() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(64, generator=g, dtype=DT)
    (o,) = once([tz.m.LaplacianSmoothing(sigma=3.0)], [x])
    assert torch.allclose(o.mean(), x.mean())
    assert float((o - o.roll(1)).norm()) < 0.5 * float((x - x.roll(1)).norm())


def test_lsgd_converges_on_noisy_quadratic() -> None:
    g = torch.Generator().manual_seed(3)
    target = torch.linspace(-1, 1, 32, dtype=DT)
    x = torch.zeros(32, dtype=DT, requires_grad=True)
    opt = tz.Optimizer([x], tz.m.LaplacianSmoothing(sigma=1.0), tz.m.LR(0.3))
    for _ in range(100):
        opt.zero_grad()
        loss = ((x - target) ** 2).sum()
        loss.backward()
        x.grad += 0.1 * torch.randn(32, generator=g, dtype=DT)
        opt.step()
    assert float(((x.detach() - target) ** 2).sum()) < 0.05
