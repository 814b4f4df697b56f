"""weight_decay/: WeightDecay, CautiousWeightDecay, DirectWeightDecay, RelativeWeightDecay (issue 7)."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz

DT = torch.float64


def quad():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(5, 5, generator=g, dtype=DT)
    A = A @ A.T / 5 + torch.eye(5, dtype=DT)
    b = torch.randn(5, generator=g, dtype=DT)
    return A, b


def run_pair(torch_fn, tz_modules, steps=15):
    A, b = quad()
    x1 = torch.linspace(-1, 2, 5, dtype=DT).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    o1, o2 = torch_fn([x1]), tz.Optimizer([x2], *tz_modules)
    for _ in range(steps):
        for x, o in ((x1, o1), (x2, o2)):
            o.zero_grad()
            (0.5 * x @ A @ x - b @ x).backward()
            o.step()
    return x1.detach(), x2.detach()


def test_weight_decay_is_torch_sgd_weight_decay() -> None:
    a, b = run_pair(lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.3), [tz.m.WeightDecay(0.3), tz.m.LR(0.1)])
    assert torch.allclose(a, b, rtol=1e-13, atol=1e-13)


def test_weight_decay_then_adam_is_torch_adam_weight_decay() -> None:
    a, b = run_pair(lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=0.2), [tz.m.WeightDecay(0.2), tz.m.Adam(), tz.m.LR(0.05)])
    assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_direct_weight_decay_after_adam_is_adamw() -> None:
    # AdamW: w <- w - lr * wd * w, then the Adam step; DirectWeightDecay(lr * wd) after Adam (whose
    # gradient is computed first) decays the parameters by the same amount, not scaled by LR
    a, b = run_pair(lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.2),
                    [tz.m.Adam(), tz.m.DirectWeightDecay(0.05 * 0.2), tz.m.LR(0.05)])
    assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def updates(modules, grads, params):
    ps = [p.clone().requires_grad_(True) for p in params]
    opt = tz.Optimizer(ps, *modules)
    for p, g in zip(ps, grads):
        p.grad = g.clone()
    opt.step()
    return [p0 - p.detach() for p0, p in zip(params, ps)]


W = [torch.tensor([2.0, -3.0, 0.5, 0.0], dtype=DT), torch.tensor([[1.0, -1.0]], dtype=DT)]
G = [torch.tensor([1.0, 1.0, -1.0, 2.0], dtype=DT), torch.tensor([[4.0, 0.0]], dtype=DT)]


@pytest.mark.parametrize("ord", [1, 2, 3, 4, 1.5])
def test_weight_decay_orders_shrink_weights(ord) -> None:
    # the gradient of (1/ord) sum |w|^ord: sign(w) |w|^(ord-1); for ord=3 the reference uses w^2,
    # which grows negative weights
    out = updates([tz.m.WeightDecay(0.1, ord=ord)], G, W)
    for o, g, w in zip(out, G, W):
        exp = g + 0.1 * torch.sign(w) * w.abs() ** (ord - 1)
        assert torch.allclose(o, exp)
    wd_only = updates([tz.m.WeightDecay(0.1, ord=ord)], [torch.zeros_like(g) for g in G], W)
    for d, w in zip(wd_only, W):
        assert torch.all(d * w >= 0)  # the decay always points towards zero


def test_cautious_weight_decay_masks_by_update_sign() -> None:
    for ord in (1, 2, 3):
        out = updates([tz.m.CautiousWeightDecay(0.1, ord=ord)], G, W)
        for o, g, w in zip(out, G, W):
            d = torch.sign(w) * w.abs() ** (ord - 1)
            assert torch.allclose(o, g + 0.1 * d * (g * d > 0))


def test_direct_weight_decay_changes_params_not_update() -> None:
    for ord in (1, 2, 4):
        out = updates([tz.m.DirectWeightDecay(0.1, ord=ord), tz.m.LR(0.5)], G, W)
        for o, g, w in zip(out, G, W):
            assert torch.allclose(o, 0.5 * g + 0.1 * torch.sign(w) * w.abs() ** (ord - 1))


def test_direct_weight_decay_first_with_closure_sees_decayed_params() -> None:
    x = torch.tensor([1.0, 2.0], dtype=DT, requires_grad=True)
    opt = tz.Optimizer([x], tz.m.DirectWeightDecay(0.1), tz.m.LR(1.0))

    def closure(backward=True):
        loss = (x ** 2).sum() / 2
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    opt.step(closure)
    # decayed to 0.9 x, the gradient is taken there: 0.9 x - 0.9 x
    assert torch.allclose(x.detach(), torch.zeros(2, dtype=DT))


@pytest.mark.parametrize("norm_input", ["update", "grad", "params"])
@pytest.mark.parametrize("metric", ["mad", 2, "std"])
def test_relative_weight_decay(norm_input, metric) -> None:
    hb = [1.9 * g for g in G]  # HeavyBall's first update
    out = updates([tz.m.HeavyBall(), tz.m.RelativeWeightDecay(0.2, norm_input=norm_input, metric=metric)], G, W)
    src = {"update": hb, "grad": G, "params": W}[norm_input]
    flat = torch.cat([t.reshape(-1) for t in src])
    m = {"mad": flat.abs().mean(), 2: flat.norm(), "std": flat.std()}[metric]
    for o, u, w in zip(out, hb, W):
        assert torch.allclose(o, u + 0.2 * m * w)


def test_relative_weight_decay_cautious_and_ord() -> None:
    out = updates([tz.m.RelativeWeightDecay(0.2, ord=1, cautious=True)], G, W)
    m = torch.cat([g.reshape(-1) for g in G]).abs().mean()
    for o, g, w in zip(out, G, W):
        d = torch.sign(w)
        assert torch.allclose(o, g + 0.2 * m * d * (g * d > 0))


def test_per_group_weight_decay() -> None:
    a = torch.ones(2, dtype=DT, requires_grad=True)
    b = torch.ones(2, dtype=DT, requires_grad=True)
    opt = tz.Optimizer([{"params": [a]}, {"params": [b], "weight_decay": 0.5}], tz.m.WeightDecay(0.1), tz.m.LR(1.0))
    a.grad = torch.zeros(2, dtype=DT)
    b.grad = torch.zeros(2, dtype=DT)
    opt.step()
    assert torch.allclose(a, torch.full((2,), 0.9, dtype=DT)) and torch.allclose(b, torch.full((2,), 0.5, dtype=DT))


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="ord"):
        tz.m.WeightDecay(0.1, ord="l2")
    with pytest.raises(ValueError, match="norm_input"):
        tz.m.RelativeWeightDecay(norm_input="loss")
    with pytest.raises(ValueError, match="ord"):
        tz.m.RelativeWeightDecay(metric="nope")
