"""Elementwise functions and utility modules."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

import torchzero as tz
from torchzero.core.spec import SpecError

sys.path.insert(0, str(Path(__file__).parent))
from _ops_helpers import apply, flat, randn  # noqa: E402

M = tz.m


@pytest.fixture
def u():
    return randn((3, 2), (4,), (), seed=21)


def close(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("mod, fn", [
    (M.Abs, torch.abs), (M.Exp, torch.exp), (M.Negate, torch.neg), (M.Sign, torch.sign), (M.Sqrt, torch.sqrt),
    (M.Reciprocal, torch.reciprocal), (lambda: M.Reciprocal(eps=1.0), lambda t: 1 / (t + 1)),
    (lambda: M.CustomUnaryOperation("tanh"), torch.tanh),
    (lambda: M.CustomUnaryOperation("abs_"), torch.abs),
    (lambda: M.CustomUnaryOperation("square"), torch.square),
    (lambda: M.CustomUnaryOperation("sinh"), torch.sinh),
    (lambda: M.UnaryParameterwiseLambda(lambda t: t * 2), lambda t: t * 2),
    (lambda: M.UnaryLambda(lambda ts: [t.mul_(3) for t in ts]), lambda t: t * 3),
])
def test_unary(u, mod, fn):
    close(apply(mod(), u), [fn(t) for t in u])


def test_nan_to_num():
    x = [torch.tensor([float("nan"), float("inf"), -float("inf"), 1.0])]
    close(apply(M.NanToNum(nan=5.0, posinf=6.0, neginf=-6.0), x), [torch.tensor([5.0, 6.0, -6.0, 1.0])])
    big = torch.finfo(torch.float32).max
    close(apply(M.NanToNum(), x), [torch.tensor([0.0, big, -big, 1.0])])


def test_custom_unary_operation_validates_the_name():
    with pytest.raises(ValueError, match="name"):
        M.CustomUnaryOperation("__reduce_ex__")
    with pytest.raises(ValueError, match="name"):
        M.CustomUnaryOperation("no_such_method")
    with pytest.raises(TypeError, match="name"):
        M.CustomUnaryOperation(torch.tanh)
    spec = tz.to_spec(M.CustomUnaryOperation("tanh"))
    assert spec == {"module": "CustomUnaryOperation", "args": ["tanh"], "kwargs": {}}


def _triple(tensors):
    return [t * 3 for t in tensors]


@pytest.mark.parametrize("cls", [M.UnaryLambda, M.UnaryParameterwiseLambda])
def test_lambda_specs_need_a_registered_callable(cls):
    mod = cls(lambda t: t)
    with pytest.raises(SpecError, match="register_callable"):
        tz.to_spec(mod)
    # a spec naming a callable nobody registered is refused when rebuilding, too
    with pytest.raises(SpecError, match="unknown callable"):
        tz.from_spec({"module": cls.__name__, "args": [{"__callable__": "os.system"}], "kwargs": {}})


def test_registered_callable_travels_in_a_spec():
    tz.register_callable(_triple, "tests.ops.triple")
    spec = tz.to_spec(M.UnaryLambda(_triple))
    assert spec["args"] == [{"__callable__": "tests.ops.triple"}]
    u = randn((3,), seed=22)
    close(apply(tz.from_spec(spec), u), [t * 3 for t in u])


def test_lambda_needs_a_callable():
    with pytest.raises(TypeError, match="fn"):
        M.UnaryLambda(3)


# ------------------------------------------------------------------------------ utility
def test_constants(u):
    close(apply(M.Fill(2.5), u), [torch.full_like(t, 2.5) for t in u])
    close(apply(M.Ones(), u), [torch.ones_like(t) for t in u])
    close(apply(M.Zeros(), u), [torch.zeros_like(t) for t in u])


def test_identity_and_noop_ignore_arguments(u):
    close(apply(M.Identity(1, 2, key="x"), u), u)
    close(apply(M.Noop(3), u), u)


def test_grad_params_clone():
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    g = torch.tensor([0.5, -0.5])
    # Params: the update is the parameters; a later in-place op must not change the parameters
    opt = tz.Optimizer([p], M.Params(), M.Mul(0.5))
    p.grad = g.clone()
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([0.5, 1.0]))
    # Grad after other modules restores the gradient; Clone gives an independent copy
    q = torch.tensor([1.0, 2.0], requires_grad=True)
    opt = tz.Optimizer([q], M.Mul(10.0), M.Grad(), M.Clone(), M.Mul(2.0))
    q.grad = g.clone()
    opt.step()
    torch.testing.assert_close(q.detach(), torch.tensor([0.0, 3.0]))
    torch.testing.assert_close(q.grad, g)


def test_update_to_none_starts_again_from_the_gradient():
    p = torch.tensor([1.0], requires_grad=True)
    opt = tz.Optimizer([p], M.Mul(100.0), M.UpdateToNone(), M.LR(0.5))
    p.grad = torch.tensor([2.0])
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([0.0]))


@pytest.mark.filterwarnings("ignore:the closure is evaluated again")
def test_grad_to_none_evaluates_the_gradient_again():
    p = torch.tensor([1.0, -1.0], requires_grad=True)
    calls = []

    def closure(backward=True):
        calls.append(backward)
        loss = (p ** 2).sum()
        if backward:
            p.grad = None
            loss.backward()
        return loss

    opt = tz.Optimizer([p], M.Grad(), M.GradToNone(), M.Grad(), M.LR(0.1))
    opt.step(closure)
    assert calls == [True, True]
    torch.testing.assert_close(p.detach(), torch.tensor([0.8, -0.8]))
    with pytest.raises(RuntimeError, match="closure"):
        p.grad = torch.ones(2)
        opt.step()


def _sample(mod, shapes=((200, 50), (300,)), seed=0):
    params = [torch.zeros(s, requires_grad=True) for s in shapes]
    torch.manual_seed(seed)
    out = tz.step_tensors([mod], [torch.zeros(s) for s in shapes], params=params)
    return out


def test_randn_and_uniform():
    out = _sample(M.Randn())
    torch.manual_seed(0)
    close(out, [torch.randn(200, 50), torch.randn(300)])
    out = flat(_sample(M.Uniform(-2.0, 3.0)))
    assert out.min() >= -2 and out.max() < 3 and abs(float(out.mean()) - 0.5) < 0.1


@pytest.mark.parametrize("dist", ["normal", "gaussian", "uniform", "rademacher", "sphere"])
@pytest.mark.parametrize("variance", [None, 4.0])
def test_random_sample_variance(dist, variance):
    """With ``variance`` each entry has that variance (the reference 0.4.4 scales normal, rademacher
    and sphere samples by the variance itself)."""
    x = flat(_sample(M.RandomSample(dist, variance)))
    n = x.numel()
    if dist == "sphere" and variance is None:
        assert math.isclose(float(x.norm()), 1.0, rel_tol=1e-5)
        return
    want = {"uniform": 1 / 3, "sphere": 1.0}.get(dist, 1.0) if variance is None else variance
    assert abs(float(x.var()) / want - 1) < 0.05
    assert abs(float(x.mean())) < 0.1 * math.sqrt(want)
    if dist == "rademacher":
        assert set(x.abs().unique().tolist()) == {math.sqrt(want)}
    if dist == "sphere":
        assert math.isclose(float(x.norm()), math.sqrt(want * n), rel_tol=1e-5)


def test_random_sample_bad_arguments():
    with pytest.raises(ValueError, match="distribution"):
        M.RandomSample("cauchy")
    with pytest.raises(ValueError, match="variance"):
        M.RandomSample("normal", -1.0)


@pytest.mark.parametrize("cls", [M.Identity, M.Noop])
def test_identity_hessian(cls):
    pytest.importorskip("torchzero.linalg")
    p = [torch.zeros(2, 3, dtype=torch.float64, requires_grad=True), torch.zeros(4, dtype=torch.float64, requires_grad=True)]
    H = cls().get_H(tz.Objective(p))
    assert H.size() == 10
    x = torch.arange(10, dtype=torch.float64)
    torch.testing.assert_close(H.matvec(x), x)
    torch.testing.assert_close(H.solve(x), x)
    torch.testing.assert_close(H.to_tensor(), torch.eye(10, dtype=torch.float64))
