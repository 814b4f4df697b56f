"""Multi-operand operations and reductions."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import torchzero as tz

sys.path.insert(0, str(Path(__file__).parent))
from _ops_helpers import apply, randn, run_steps  # noqa: E402

M = tz.m


@pytest.fixture
def u():
    return randn((3, 2), (4,), (), seed=11)


def close(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mod, fn", [
    (lambda: M.ClipModules(M.Mul(2.0), -1.0, M.Fill(0.3)), lambda u: (2 * u).clamp(-1.0, 0.3)),
    (lambda: M.ClipModules(M.Mul(2.0), None, 0.3), lambda u: (2 * u).clamp(max=0.3)),
    (lambda: M.ClipModules(M.Identity()), lambda u: u),
    (lambda: M.DivModules(M.Mul(2.0), M.Exp()), lambda u: 2 * u / u.exp()),
    (lambda: M.DivModules(M.Mul(2.0), M.Exp(), other_first=True), lambda u: 2 * u / u.exp()),
    (lambda: M.DivModules(2.0, M.Exp()), lambda u: 2 / u.exp()),
    (lambda: M.DivModules(M.Exp(), 2.0), lambda u: u.exp() / 2),
    (lambda: M.SubModules(M.Mul(2.0), M.Fill(1.0), alpha=3), lambda u: 2 * u - 3),
    (lambda: M.SubModules(1.0, M.Identity()), lambda u: 1 - u),
    (lambda: M.SubModules(M.Identity(), 1.0, alpha=2), lambda u: u - 2),
    (lambda: M.SubModules(M.Identity(), M.Identity()), lambda u: 0 * u),
    (lambda: M.PowModules(M.Abs(), 2.0), lambda u: u.abs() ** 2),
    (lambda: M.PowModules(M.Abs(), M.Fill(0.5)), lambda u: u.abs() ** 0.5),
    (lambda: M.PowModules(2.0, M.Identity()), lambda u: 2 ** u),
    (lambda: M.LerpModules(M.Mul(2.0), M.Fill(1.0), 0.25), lambda u: 2 * u + 0.25 * (1 - 2 * u)),
    (lambda: M.Sum(M.Mul(2.0), 1.0, M.Identity()), lambda u: 3 * u + 1),
    (lambda: M.Sum(M.Identity(), M.Identity()), lambda u: 2 * u),
    (lambda: M.Mean(M.Mul(2.0), 1.0, M.Identity()), lambda u: (3 * u + 1) / 3),
    (lambda: M.Prod(M.Mul(2.0), 3.0, M.Identity()), lambda u: 6 * u * u),
    (lambda: M.MaximumModules(M.Mul(2.0), 0.5, M.Identity()), lambda u: torch.maximum(torch.maximum(2 * u, u), torch.tensor(0.5, dtype=u.dtype))),
    (lambda: M.MinimumModules(M.Mul(2.0), 0.5, M.Identity()), lambda u: torch.minimum(torch.minimum(2 * u, u), torch.tensor(0.5, dtype=u.dtype))),
    (lambda: M.WeightedSum(M.Mul(2.0), 1.0, M.Identity(), weights=[1.0, 2.0, 3.0]), lambda u: 2 * u + 2 + 3 * u),
    (lambda: M.WeightedMean(M.Mul(2.0), 1.0, M.Identity(), weights=[1.0, 2.0, 3.0]), lambda u: (5 * u + 2) / 6),
    (lambda: M.WeightedSum(M.Identity(), weights=(0.5,)), lambda u: 0.5 * u),
])
def test_formula(u, mod, fn):
    close(apply(mod(), u), [fn(t) for t in u])


def test_pow_modules_raises_to_the_power():
    """The reference (0.4.4) divides instead; the seed says ``input ** exponent``."""
    u = [torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)]
    close(apply(M.PowModules(M.Mul(2.0), 2.0), u), [torch.tensor([4.0, 16.0, 36.0], dtype=torch.float64)])


def test_weighted_sum_instantiates_with_weights_and_round_trips():
    """The reference (0.4.4) fails to instantiate WeightedSum / WeightedMean with ``weights=``."""
    mod = M.WeightedMean(M.Identity(), M.Sign(), weights=(w for w in [1.0, 3.0]))
    spec = tz.to_spec(mod)
    assert spec["kwargs"]["weights"] == [1.0, 3.0]
    u = randn((4,), seed=12)
    close(apply(tz.from_spec(spec), u), [(t + 3 * t.sign()) / 4 for t in u])
    with pytest.raises(ValueError, match="weights"):
        M.WeightedSum(M.Identity(), M.Sign(), weights=[1.0])


@pytest.mark.parametrize("make", [
    lambda: M.DivModules(1.0, 2.0), lambda: M.SubModules(1.0, 2.0), lambda: M.Sum(1.0, 2.0), lambda: M.Prod(),
    lambda: M.ClipModules(2.0, -1.0, 1.0),
])
def test_at_least_one_module(make):
    with pytest.raises(ValueError, match="module"):
        make()


def test_bad_operand_types():
    with pytest.raises(TypeError, match="inputs"):
        M.Sum(M.Identity(), "x")
    with pytest.raises(TypeError, match="other"):
        M.DivModules(M.Identity(), "x")


class _Recorder(tz.Module):
    """Appends its tag to a shared log when stepped."""

    def __init__(self, log, tag):
        super().__init__()
        self.log, self.tag = log, tag

    def apply(self, objective):
        self.log.append(self.tag)
        return objective


def test_div_modules_other_first_sets_the_evaluation_order():
    log = []
    apply(M.DivModules(_Recorder(log, "input"), _Recorder(log, "other")), randn((2,)))
    apply(M.DivModules(_Recorder(log, "input"), _Recorder(log, "other"), other_first=True), randn((2,)))
    assert log == ["input", "other", "other", "input"]


def test_operands_get_their_own_copy_of_the_update():
    """Each operand starts from the incoming update, whatever the other operands did in place."""
    u = randn((5,), seed=13)
    out = apply(M.Sum([M.Mul(2.0), M.Add(1.0)], M.Identity(), [M.Abs(), M.Negate()]), u)
    close(out, [2 * t + 1 + t - t.abs() for t in u])


def test_graft_strength_interpolates():
    u = randn((3, 2), (4,), seed=14)
    full = apply(M.Graft(M.Sign(), M.Identity()), u)
    none = apply(M.Graft(M.Sign(), M.Identity(), strength=0.0), u)
    half = apply(M.Graft(M.Sign(), M.Identity(), strength=0.5), u)
    close(none, [t.sign() for t in u])
    close(half, [(a + b) / 2 for a, b in zip(full, none)])
    for f, t in zip(full, u):
        torch.testing.assert_close(f.norm(), t.norm())
        torch.testing.assert_close(f / f.norm(), t.sign() / t.sign().norm())


def test_lerp_weight_is_a_per_parameter_setting():
    g = [[torch.tensor([1.0]), torch.tensor([1.0])]]
    out = run_steps([M.LerpModules(M.Identity(), M.Fill(3.0), 0.5)], g, groups=[dict(weight=0.0), dict()])
    torch.testing.assert_close(out[0], torch.tensor([1.0, 2.0]))


def test_graft_converges_on_a_quadratic():
    """Sign direction with the gradient's norm (grafted sign descent) minimises a simple quadratic."""
    torch.manual_seed(0)
    x = torch.tensor([3.0, -2.0, 1.5], requires_grad=True)
    opt = tz.Optimizer([x], M.Graft(M.Sign(), M.Grad(), tensorwise=False), M.LR(0.1))
    for _ in range(200):
        opt.zero_grad()
        loss = (x ** 2).sum()
        loss.backward()
        opt.step()
    assert float((x.detach() ** 2).sum()) < 1e-3


@pytest.mark.parametrize("mods, want", [
    (lambda: [M.SubModules(M.Identity(), M.Fill(1.0), alpha=1.0)], [1 - 2.0, 1 - 1.0]),
    (lambda: [M.SubModules(M.Identity(), 1.0, alpha=1.0)], [1 - 2.0, 1 - 1.0]),
    (lambda: [M.Sub(M.Fill(1.0), alpha=1.0)], [1 - 2.0, 1 - 1.0]),
    (lambda: [M.Graft(M.Fill(1.0), M.Mul(3.0), strength=1.0)], [1 + 2.0 * 2, 3.0]),
])
def test_per_parameter_alpha_and_strength(mods, want):
    g = [[torch.tensor([1.0]), torch.tensor([1.0])]]
    out = run_steps(mods(), g, groups=[dict(alpha=2.0, strength=2.0), dict()])
    torch.testing.assert_close(out[0], torch.tensor(want))
