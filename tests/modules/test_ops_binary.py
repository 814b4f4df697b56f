"""Binary ops: the update and a number or a module."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import torchzero as tz

sys.path.insert(0, str(Path(__file__).parent))
from _ops_helpers import apply, flat, randn, run_steps

M = tz.m


@pytest.fixture
def u():
    return randn((3, 2), (4,), (), seed=1)


def close(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mod, fn", [
    (lambda: M.Add(2.0), lambda u: u + 2),
    (lambda: M.Add(2.0, alpha=3), lambda u: u + 6),
    (lambda: M.Add(M.Mul(2.0), alpha=0.5), lambda u: u + u),
    (lambda: M.Sub(2.0, alpha=3), lambda u: u - 6),
    (lambda: M.Sub(M.Mul(3.0), alpha=0.5), lambda u: u - 1.5 * u),
    (lambda: M.RSub(2.0), lambda u: 2 - u),
    (lambda: M.RSub(M.Mul(3.0)), lambda u: 2 * u),
    (lambda: M.Mul(3.0), lambda u: 3 * u),
    (lambda: M.Mul(M.Abs()), lambda u: u * u.abs()),
    (lambda: M.Div(2.0), lambda u: u / 2),
    (lambda: M.Div(M.Exp()), lambda u: u / u.exp()),
    (lambda: M.RDiv(2.0), lambda u: 2 / u),
    (lambda: M.RDiv(M.Exp()), lambda u: u.exp() / u),
    (lambda: M.Pow(3), lambda u: u ** 3),
    (lambda: M.Pow(M.Fill(2.0)), lambda u: u ** 2),
    (lambda: M.RPow(2.0), lambda u: 2 ** u),
    (lambda: M.RPow(M.Fill(3.0)), lambda u: 3 ** u),
    (lambda: M.Clip(-0.5, 0.3), lambda u: u.clamp(-0.5, 0.3)),
    (lambda: M.Clip(min=-0.2), lambda u: u.clamp(min=-0.2)),
    (lambda: M.Clip(max=0.2), lambda u: u.clamp(max=0.2)),
    (lambda: M.Clip(), lambda u: u),
    (lambda: M.Clip(1.0, -1.0), lambda u: torch.full_like(u, -1.0)),
    (lambda: M.Clip(M.Fill(-0.1), M.Fill(0.1)), lambda u: u.clamp(-0.1, 0.1)),
    (lambda: M.Maximum(M.Mul(-1)), lambda u: u.abs()),
    (lambda: M.Minimum(M.Mul(-1)), lambda u: -u.abs()),
    (lambda: M.Maximum(0.1), lambda u: u.clamp(min=0.1)),
    (lambda: M.Minimum(0.1), lambda u: u.clamp(max=0.1)),
    (lambda: M.CopySign(M.Fill(-1.0)), lambda u: -u.abs()),
    (lambda: M.CopySign(1.0), lambda u: u.abs()),
    (lambda: M.CopyMagnitude(M.Fill(-5.0)), lambda u: torch.copysign(torch.full_like(u, 5.0), u)),
    (lambda: M.RCopySign(M.Fill(-5.0)), lambda u: torch.copysign(torch.full_like(u, 5.0), u)),
    (lambda: M.CopyMagnitude(2.0), lambda u: torch.copysign(torch.full_like(u, 2.0), u)),
    (lambda: M.Threshold(0.2, 7.0, True), lambda u: torch.where(u > 0.2, u, 7.0)),
    (lambda: M.Threshold(0.2, 7.0, False), lambda u: torch.where(u < 0.2, u, 7.0)),
    (lambda: M.Threshold(M.Fill(0.0), M.Mul(0.5), True), lambda u: torch.where(u > 0, u, 0.5 * u)),
])
def test_formula(u, mod, fn):
    close(apply(mod(), u), [fn(t) for t in u])


@pytest.mark.parametrize("mod, fn", [
    (lambda: M.Add(M.Identity()), lambda u: 2 * u),
    (lambda: M.Sub(M.Identity()), lambda u: 0 * u),
    (lambda: M.RSub(M.Identity()), lambda u: 0 * u),
    (lambda: M.Div(M.Identity()), lambda u: u / u),
    (lambda: M.RDiv(M.Identity()), lambda u: u / u),
    (lambda: M.Mul(M.Identity()), lambda u: u * u),
    (lambda: M.RPow(M.Identity()), lambda u: u.abs() ** u.abs()),
    (lambda: M.CopyMagnitude(M.Identity()), lambda u: u),
    (lambda: M.GramSchimdt(M.Identity()), lambda u: 0 * u),
])
def test_operand_aliasing_the_update(u, mod, fn):
    """An operand that returns the incoming update itself must not see the operation's in-place writes."""
    if "RPow" in repr(mod()):
        u = [t.abs() for t in u]
    close(apply(mod(), u), [fn(t) for t in u])


def test_operand_sees_incoming_update_and_leaves_gradient_alone():
    p = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = tz.Optimizer([p], M.Mul(2.0), M.Add(M.Grad(), alpha=10.0), M.Sub(M.Clone()))
    g = torch.tensor([0.5, 0.25])
    p.grad = g.clone()
    opt.step()
    # update: 2g + 10 g - (2g + 10 g) = 0; the gradient tensor is untouched
    torch.testing.assert_close(p.detach(), torch.tensor([1.0, -2.0]))
    torch.testing.assert_close(p.grad, g)


def test_module_operand_state_persists_across_steps():
    """A stateful operand keeps its state between steps (here a running sum)."""
    g = [[torch.tensor([1.0, 2.0])], [torch.tensor([3.0, -1.0])]]
    out = run_steps([M.Add(M.AccumulateSum())], g)
    torch.testing.assert_close(out[1], torch.tensor([3.0, -1.0]) + torch.tensor([4.0, 1.0]))


def test_alpha_is_a_per_parameter_setting():
    g = [[torch.tensor([1.0]), torch.tensor([1.0])]]
    out = run_steps([M.Add(1.0, alpha=1.0)], g, groups=[dict(alpha=3.0), dict()])
    torch.testing.assert_close(out[0], torch.tensor([4.0, 2.0]))


def test_gram_schmidt_is_orthogonal_over_all_tensors():
    u = randn((3, 2), (4,), seed=2)
    v = randn((3, 2), (4,), seed=3)
    params = [torch.zeros_like(t, requires_grad=True) for t in u]

    class Const(tz.Module):
        def apply(self, objective):
            objective.set_updates([t.clone() for t in v])
            return objective

    out = apply(M.GramSchimdt(Const()), u, params=params)
    assert abs(float(flat(out) @ flat(v))) < 1e-12
    # u - out is parallel to v
    d = flat(u) - flat(out)
    coef = float(flat(u) @ flat(v)) / float(flat(v) @ flat(v))
    torch.testing.assert_close(d, coef * flat(v))


def test_gram_schmidt_with_zero_other_returns_update():
    u = randn((5,), seed=4)
    close(apply(M.GramSchimdt(M.Zeros()), u), u)


def test_graft_input_to_output_takes_the_norm_of_magnitude():
    u = randn((3, 2), (4,), seed=5)
    out = apply(M.GraftInputToOutput(M.Fill(1.0)), u)
    for o, t in zip(out, u):
        torch.testing.assert_close(o.norm(), torch.tensor(t.numel() ** 0.5, dtype=t.dtype))
        torch.testing.assert_close(o / o.norm(), t / t.norm())
    out = apply(M.GraftInputToOutput(M.Fill(1.0), tensorwise=False), u)
    torch.testing.assert_close(flat(out).norm(), torch.tensor(10 ** 0.5, dtype=torch.float64))
    torch.testing.assert_close(flat(out) / flat(out).norm(), flat(u) / flat(u).norm())


def test_graft_output_to_input():
    u = randn((3, 2), (4,), seed=6)
    out = apply(M.GraftOutputToInput(M.Fill(1.0)), u)
    for o, t in zip(out, u):
        torch.testing.assert_close(o, torch.full_like(t, float(t.norm()) / t.numel() ** 0.5))


def test_graft_eps_bounds_the_denominator():
    u = [torch.tensor([1e-9, 0.0], dtype=torch.float64)]
    out = apply(M.GraftInputToOutput(M.Fill(1.0), eps=0.5), u)
    torch.testing.assert_close(out[0], u[0] * (2 ** 0.5) / 0.5)


@pytest.mark.parametrize("ord", [1, 2, 3.5, 0.5, float("inf"), 0, "l0", "l1", "l2", "l3", "l4", "linf", "mad", "std"])
@pytest.mark.parametrize("tensorwise", [True, False])
def test_graft_orders_give_the_magnitude_norm(ord, tensorwise):
    from torchzero.modules.ops._norms import norms
    u = randn((3, 2), (4,), seed=7)
    m = [t.abs() + 1 for t in randn((3, 2), (4,), seed=8)]

    class Const(tz.Module):
        def apply(self, objective):
            objective.set_updates([t.clone() for t in m])
            return objective

    out = apply(M.GraftInputToOutput(Const(), tensorwise=tensorwise, ord=ord, eps=1e-12), u)
    got, want = norms(out, ord, tensorwise), norms(m, ord, tensorwise)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("ord", ["var", "sum"])
def test_graft_non_homogeneous_orders_scale_by_the_ratio(ord):
    """``var`` and ``sum`` are not norms: the update is still scaled by ``n(magnitude) / max(n(update), eps)``."""
    from torchzero.modules.ops._norms import norms
    u = [torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)]
    out = apply(M.GraftInputToOutput(M.Mul(3.0), ord=ord), u)
    ratio = norms([3 * u[0]], ord, True)[0] / norms(u, ord, True)[0]
    torch.testing.assert_close(out[0], u[0] * ratio)


def test_norm_definitions():
    from torchzero.modules.ops._norms import norms
    x = [torch.tensor([1.0, -2.0, 3.0, 0.0], dtype=torch.float64), torch.tensor([2.0, 1.0], dtype=torch.float64)]
    allx = flat(x)
    want = {"mad": allx.abs().mean(), "std": allx.std(), "var": allx.var(), "sum": allx.sum(), "l0": torch.tensor(5.0),
            "l1": allx.abs().sum(), "linf": allx.abs().max(), 3: allx.abs().pow(3).sum() ** (1 / 3)}
    for ord, w in want.items():
        torch.testing.assert_close(norms(x, ord, False)[0], w.to(torch.float64), msg=str(ord))
        torch.testing.assert_close(norms(x, ord, True)[1], norms([x[1]], ord, False)[0], msg=str(ord))


def test_bad_arguments():
    with pytest.raises(TypeError, match="other"):
        M.Add("two")
    with pytest.raises(TypeError, match="min"):
        M.Clip(min="x")
    with pytest.raises(ValueError, match="ord"):
        M.GraftInputToOutput(M.Sign(), ord="l7")
    with pytest.raises(TypeError, match="exponent"):
        M.Pow([1, 2])


def test_specs_round_trip_with_module_operands():
    mod = M.Add(M.Mul(2.0), alpha=0.5)
    spec = tz.to_spec(mod)
    assert spec["args"][0] == {"__module__": {"module": "Mul", "args": [2.0], "kwargs": {}}}
    rebuilt = tz.from_spec(spec)
    u = randn((3,), seed=9)
    close(apply(rebuilt, u), apply(mod, u))
