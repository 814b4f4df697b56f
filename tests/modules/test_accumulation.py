"""GradientAccumulation."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz


def test_mean_of_n_minibatch_gradients_equals_one_big_batch():
    torch.manual_seed(0)
    X, y = torch.randn(32, 4), torch.randn(32)
    w1 = torch.zeros(4, requires_grad=True)
    w2 = torch.zeros(4, requires_grad=True)
    o1 = tz.Optimizer([w1], tz.m.GradientAccumulation(4), tz.m.LR(0.1))
    o2 = tz.Optimizer([w2], tz.m.LR(0.1))
    for epoch in range(3):
        for i in range(4):
            xb, yb = X[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8]
            o1.zero_grad()
            ((xb @ w1 - yb) ** 2).mean().backward()
            before = w1.detach().clone()
            o1.step()
            if i < 3:
                assert torch.equal(before, w1.detach())  # no update until 4 gradients are in
        o2.zero_grad()
        ((X @ w2 - y) ** 2).mean().backward()
        o2.step()
        assert torch.allclose(w1, w2, atol=1e-6)


def test_sum_and_no_stop():
    x = torch.tensor([1.0, -1.0], requires_grad=True)
    o = tz.Optimizer([x], tz.m.GradientAccumulation(2, mean=False, stop=False), tz.m.LR(0.1))
    moves = []
    for _ in range(4):
        o.zero_grad()
        (x ** 2).sum().backward()
        before = x.detach().clone()
        o.step()
        moves.append(before - x.detach())
    # stop=False: plain steps in between, the summed update at the end of each cycle
    assert torch.allclose(moves[0], 0.1 * 2 * torch.tensor([1.0, -1.0]))
    g0 = 2 * torch.tensor([1.0, -1.0])
    g1 = 2 * (torch.tensor([1.0, -1.0]) - moves[0])
    assert torch.allclose(moves[1], 0.1 * (g0 + g1))


def test_bad_n():
    with pytest.raises(ValueError, match="n"):
        tz.m.GradientAccumulation(0)
