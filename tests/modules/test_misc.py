"""Behaviour of the misc family (torchzero/modules/misc/) as the seed describes it."""
from __future__ import annotations

import contextlib
import io
import logging
import math

import pytest
import torch

import torchzero as tz
from closures import backward_closure, run_trajectory

H = torch.tensor([2.0, 4.0, 6.0], dtype=torch.float64)  # Hessian diagonal of quad()


def quad(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (H * x ** 2).sum() + 1.0


def make_closure(opt, params, fn):
    return backward_closure(opt, lambda: fn(*params))


def one_step(mods, x0=(1.0, -2.0, 3.0), fn=quad, closure=True, steps=1):
    """Runs ``steps`` steps; returns the updates (x_before - x_after) and the optimizer."""
    x0 = torch.tensor(x0, dtype=torch.float64)
    traj, opt = run_trajectory(mods, fn, x0, steps, closure=closure)
    return [a - b for a, b in zip([x0, *traj], traj)], opt


def grad_at(x0, fn=quad):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    fn(x).backward()
    return x.grad


class Scale(tz.TensorTransform):
    """Multiplies the update by a fixed vector (makes the update differ from the gradient)."""

    def __init__(self, w):
        super().__init__()
        self.w = w

    def single_tensor_apply(self, tensor, param, grad, loss, state, setting):
        return tensor * self.w.to(tensor)


class Ones(tz.TensorTransform):
    """Replaces the update with ones."""

    def single_tensor_apply(self, tensor, param, grad, loss, state, setting):
        return torch.ones_like(tensor)


W = torch.tensor([-1.0, 2.0, -3.0], dtype=torch.float64)
X0 = (1.0, -2.0, 3.0)


# ---------------------------------------------------------------------------- loss scaling
def test_div_mul_fill_loss():
    g = grad_at(X0)
    f = float(quad(torch.tensor(X0, dtype=torch.float64)))
    (u,), _ = one_step([tz.m.DivByLoss(alpha=2.0)])
    torch.testing.assert_close(u, g / (2 * f))
    (u,), _ = one_step([tz.m.MulByLoss(alpha=3.0)])
    torch.testing.assert_close(u, g * 3 * f)
    (u,), _ = one_step([tz.m.FillLoss(alpha=0.5)])
    torch.testing.assert_close(u, torch.full((3,), 0.5 * f, dtype=torch.float64))


def test_loss_scaling_min_value_bounds_the_factor():
    neg = lambda x: quad(x) - 100.0  # noqa: E731  negative loss
    g = grad_at(X0)
    (u,), _ = one_step([tz.m.DivByLoss(min_value=0.5)], fn=neg)
    torch.testing.assert_close(u, g / 0.5)
    (u,), _ = one_step([tz.m.MulByLoss(min_value=0.25, alpha=10.0)], fn=neg)
    torch.testing.assert_close(u, g * 0.25)


def test_loss_scaling_backward_saves_an_evaluation():
    _, opt = one_step([tz.m.DivByLoss(backward=True), tz.m.LR(0.1)])
    assert opt.num_evaluations == 1
    with pytest.warns(UserWarning, match="evaluated again"):
        _, opt = one_step([tz.m.DivByLoss(backward=False), tz.m.LR(0.1)])
    assert opt.num_evaluations == 2


def test_loss_modules_use_the_loss_passed_to_step():
    x = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([x], tz.m.MulByLoss())
    loss = quad(x)
    loss.backward()
    g = x.grad.clone()
    before = x.detach().clone()
    opt.step(loss=loss)
    torch.testing.assert_close(before - x.detach(), g * float(loss.detach()))


# ---------------------------------------------------------------------------- signs and scaling
def test_grad_sign_and_update_sign():
    g = grad_at(X0)
    (u,), _ = one_step([Scale(W), tz.m.GradSign()])
    torch.testing.assert_close(u, (g * W).abs() * g.sign())
    (u,), _ = one_step([Scale(W), tz.m.UpdateSign()])
    torch.testing.assert_close(u, g.abs() * (g * W).sign())


def test_relative():
    g = grad_at(X0)
    (u,), _ = one_step([tz.m.Relative(min_value=2.5)])
    torch.testing.assert_close(u, g * torch.tensor(X0, dtype=torch.float64).abs().clamp_min(2.5))


def test_noise_sign_signs_and_variance():
    torch.manual_seed(0)
    x = torch.linspace(-3, 3, 20001, dtype=torch.float64).requires_grad_(True)
    for dist in ["normal", "uniform", "rademacher", "sphere"]:
        m = tz.m.NoiseSign(dist, variance=4.0)
        out = tz.step_tensors(m, [x.detach().clone()], params=[x])[0]
        nz = x.detach() != 0
        assert torch.equal(out.sign()[nz], x.detach().sign()[nz]), dist
        assert abs(float(out.pow(2).mean()) - 4.0) < 0.2, dist  # every entry has variance 4
    sph = tz.step_tensors(tz.m.NoiseSign("sphere"), [x.detach().clone()], params=[x])[0]
    assert math.isclose(float(sph.norm()), 1.0, rel_tol=1e-9)


# ---------------------------------------------------------------------------- grafting
def _two_tensor_run(mods, ps=None):
    ps = ps or [torch.tensor([1.0, -2.0], dtype=torch.float64), torch.tensor([[3.0, 0.5], [-1.0, 2.0]], dtype=torch.float64)]
    ps = [p.clone().requires_grad_(True) for p in ps]
    opt = tz.Optimizer(ps, *mods)
    fn = lambda a, b: (a ** 2).sum() + 2 * (b ** 2).sum() + 0.3 * a.sum() * b.sum()  # noqa: E731
    before = [p.detach().clone() for p in ps]
    opt.step(make_closure(opt, ps, fn))
    grads = [p.grad.clone() for p in ps]
    return [b - p.detach() for b, p in zip(before, ps)], grads, ps


def _gnorm(ts, ord=2):
    return torch.linalg.vector_norm(torch.cat([t.reshape(-1) for t in ts]), ord)


@pytest.mark.parametrize("ord", [2, 1, float("inf"), 3])
def test_graft_to_grad_matches_gradient_norm(ord):
    u, g, _ = _two_tensor_run([tz.m.LR(-3.0), tz.m.GraftToGrad(ord=ord)])
    assert math.isclose(float(_gnorm(u, ord)), float(_gnorm(g, ord)), rel_tol=1e-9)
    u, g, _ = _two_tensor_run([tz.m.LR(-3.0), tz.m.GraftToGrad(tensorwise=True, ord=ord)])
    for ui, gi in zip(u, g):
        assert math.isclose(float(torch.linalg.vector_norm(ui, ord)), float(torch.linalg.vector_norm(gi, ord)), rel_tol=1e-9)


def test_graft_grad_to_update_and_named_metrics():
    u, g, _ = _two_tensor_run([tz.m.LR(-3.0), tz.m.GraftGradToUpdate()])
    # the output is the gradient direction with the norm of the update (3 g)
    torch.testing.assert_close(torch.cat([t.reshape(-1) for t in u]), 3 * torch.cat([t.reshape(-1) for t in g]))
    u, g, _ = _two_tensor_run([tz.m.LR(-3.0), tz.m.GraftToGrad(ord="mad")])
    torch.testing.assert_close(torch.cat([t.reshape(-1) for t in u]), -torch.cat([t.reshape(-1) for t in g]))
    u, g, _ = _two_tensor_run([tz.m.LR(-3.0), tz.m.GraftToGrad(ord="l0")])  # the reference crashes here
    torch.testing.assert_close(torch.cat([t.reshape(-1) for t in u]), -3 * torch.cat([t.reshape(-1) for t in g]))


def test_graft_eps_bounds_the_denominator():
    u, g, _ = _two_tensor_run([tz.m.GraftToGrad(eps=100.0)])
    gn = _gnorm(g)
    torch.testing.assert_close(_gnorm(u), gn * gn / 100)


def test_graft_to_params_norm_and_eps_floor():
    u, _, ps = _two_tensor_run([tz.m.GraftToParams()])
    before = [p.detach() + ui for p, ui in zip(ps, u)]
    assert math.isclose(float(_gnorm(u)), float(_gnorm(before)), rel_tol=1e-9)
    # parameters at zero: the seed says the output norm is no smaller than eps
    zeros = [torch.zeros(2, dtype=torch.float64), torch.zeros(2, 2, dtype=torch.float64)]
    u, _, _ = _two_tensor_run([Ones(), tz.m.GraftToParams(eps=1e-3)], ps=zeros)
    assert math.isclose(float(_gnorm(u)), 1e-3, rel_tol=1e-9)


# ---------------------------------------------------------------------------- consecutive updates
def _sgd_grads(n, lr=0.1):
    """Gradients of quad() along plain gradient descent with ``lr``."""
    x = torch.tensor(X0, dtype=torch.float64)
    out = []
    for _ in range(n):
        g = H * x
        out.append(g.clone())
        x = x - lr * g
    return out


@pytest.mark.parametrize("name, expected", [
    ("LastDifference", lambda cur, prev: cur - prev),
    ("LastGradDifference", lambda cur, prev: cur - prev),
    ("LastProduct", lambda cur, prev: cur * prev),
    ("LastRatio", lambda cur, prev: cur / prev),
])
def test_last_pair_modules(name, expected):
    # with LR(1) after them, feed the module plain gradients by stepping with LR(0.1) inside a Multistep-free chain:
    # run the module for output only (update replaced), parameters moved by a separate SGD run
    grads = _sgd_grads(4)
    m = getattr(tz.m, name)()
    x = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
    init = 1.0 if name in ("LastProduct", "LastRatio") else 0.0
    prev = torch.full((3,), init, dtype=torch.float64)
    for g in grads:
        obj = tz.Objective([x])
        obj.grads = [g.clone()]
        out = m.step(obj).get_updates()[0]
        torch.testing.assert_close(out, expected(g, prev))
        prev = g
        with torch.no_grad():
            x.sub_(0.1 * g)


def test_last_ratio_prev_and_absolute_ratio_eps():
    m1 = tz.m.LastRatio(numerator="prev")
    m2 = tz.m.LastAbsoluteRatio(numerator="cur", eps=0.5)
    m3 = tz.m.LastAbsoluteRatio(numerator="prev", eps=0.5)
    x = torch.zeros(2, dtype=torch.float64)
    seq = [torch.tensor([0.2, -2.0], dtype=torch.float64), torch.tensor([-4.0, 1.0], dtype=torch.float64)]
    outs = [[tz.step_tensors(m, [u.clone()], params=[x])[0] for u in seq] for m in (m1, m2, m3)]
    torch.testing.assert_close(outs[0][1], seq[0] / seq[1])
    torch.testing.assert_close(outs[1][1], seq[1].abs() / seq[0].abs().clamp_min(0.5))
    torch.testing.assert_close(outs[2][1], seq[0].abs().clamp_min(0.5) / seq[1].abs())


def test_hpu_estimate_is_hessian_times_step_direction():
    ups, _ = one_step([tz.m.HpuEstimate(), tz.m.LR(0.05)], steps=4)
    # after the first step, y = H s, so the output is H s / ||s|| and the step is lr * that
    x = torch.tensor(X0, dtype=torch.float64)
    xs = [x.clone()]
    for u in ups:
        xs.append(xs[-1] - u)
    for k in range(1, 4):
        s = xs[k] - xs[k - 1]
        torch.testing.assert_close(ups[k], 0.05 * H * s / s.norm())


def test_previous_returns_old_updates_unchanged_by_later_modules():
    grads = _sgd_grads(5)
    x = torch.zeros(3, dtype=torch.float64)
    m = tz.m.Previous(n=2)
    got = []
    for g in grads:
        got.append(tz.step_tensors(m, [g.clone()], params=[x])[0].clone())
        tz.step_tensors([m, tz.m.LR(0.0)], [g.clone()], params=[torch.zeros(3, dtype=torch.float64)])  # unrelated
    m = tz.m.Previous(n=2)
    got = []
    for g in grads:
        out = tz.step_tensors([m, Scale(torch.tensor(0.0))], [g.clone()], params=[x])
        assert torch.equal(out[0], torch.zeros(3, dtype=torch.float64))
        got.append(m.state[x]["history"][0].clone())
    # the history keeps the updates as they came (the reference's is rescaled by later in-place modules)
    expected = [grads[0], grads[0], grads[0], grads[1], grads[2]]
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    m = tz.m.Previous(n=1)
    outs = [tz.step_tensors(m, [g.clone()], params=[x])[0] for g in grads]
    for a, b in zip(outs, [grads[0], grads[0], grads[1], grads[2], grads[3]]):
        torch.testing.assert_close(a, b)


# ---------------------------------------------------------------------------- random hvp
def test_random_hvp_estimates():
    (u,), _ = one_step([tz.m.RandomHvp(distribution="rademacher", zHz=True, seed=0)])
    torch.testing.assert_close(u, H)  # z * Hz = diag(H) for a diagonal Hessian and z = +-1
    g = torch.Generator().manual_seed(3)
    z = torch.randn(3, generator=g, dtype=torch.float64)
    (u,), _ = one_step([tz.m.RandomHvp(seed=3)])
    torch.testing.assert_close(u, H * z)
    for method in ["fd_forward", "central"]:  # "central" is the documented literal; the reference crashes on it
        (u,), _ = one_step([tz.m.RandomHvp(seed=3, hvp_method=method)])
        torch.testing.assert_close(u, H * z, rtol=1e-5, atol=1e-6)


def test_random_hvp_update_freq_reuses_the_product_unscaled():
    ups, opt = one_step([tz.m.RandomHvp(seed=0, update_freq=3), tz.m.LR(0.01)], steps=4)
    torch.testing.assert_close(ups[1], ups[0])
    torch.testing.assert_close(ups[2], ups[0])  # the reference shrinks it by lr at every reuse
    assert not torch.allclose(ups[3], ups[0])


def test_random_hvp_needs_closure():
    with pytest.raises(RuntimeError, match="closure"):
        one_step([tz.m.RandomHvp(seed=0)], closure=False)


# ---------------------------------------------------------------------------- SaveBest
def test_save_best():
    ups, opt = one_step([tz.m.LR(0.45), tz.m.SaveBest()], steps=6)  # oscillates on the stiff coordinate
    xs = [torch.tensor(X0, dtype=torch.float64)]
    for u in ups:
        xs.append(xs[-1] - u)
    losses = [float(quad(x)) for x in xs[:-1]]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert opt.attrs["best_loss"] == pytest.approx(losses[best])
    torch.testing.assert_close(opt.attrs["best_params"][0], xs[best])
    opt.attrs["load_best_params"]()
    torch.testing.assert_close(opt.param_groups[0]["params"][0].detach(), xs[best])


# ---------------------------------------------------------------------------- debug prints
def test_print_modules_go_where_the_user_says():
    buf = io.StringIO()
    mods = [tz.m.PrintLoss(print_fn=buf), tz.m.PrintUpdate("u=", print_fn=buf), tz.m.PrintShape(print_fn=buf),
            tz.m.PrintParams(print_fn=buf), tz.m.LR(0.1)]
    one_step(mods)
    text = buf.getvalue()
    assert "loss = " in text and "u=" in text and "shapes = [(3,)]" in text and "params = " in text
    lines = []
    one_step([tz.m.PrintLoss(print_fn=lines.append), tz.m.LR(0.1)])
    assert lines and lines[0].startswith("loss = ")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        one_step([tz.m.PrintShape(), tz.m.LR(0.1)])
    assert "shapes = " in out.getvalue()
    logger = logging.getLogger("tz-test-print")
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())
    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    one_step([tz.m.PrintUpdate(print_fn=logger), tz.m.LR(0.1)])
    assert records and records[0].startswith("update = ")
    with pytest.raises(TypeError):
        tz.m.PrintLoss(print_fn=3)


# ---------------------------------------------------------------------------- inner loops
def test_multistep_and_sequential_are_inner_gradient_descent():
    ups, opt = one_step([tz.m.Multistep(tz.m.LR(0.1), 3)])
    x = torch.tensor(X0, dtype=torch.float64)
    y = x.clone()
    for _ in range(3):
        y = y - 0.1 * H * y
    torch.testing.assert_close(ups[0], x - y)
    assert opt.num_evaluations == 3
    ups, _ = one_step([tz.m.Sequential([tz.m.LR(0.1), [tz.m.LR(0.5), tz.m.LR(0.4)]], steps=2)])
    y = x.clone()
    for _ in range(2):
        y = y - 0.1 * H * y
        y = y - 0.2 * H * y
    torch.testing.assert_close(ups[0], x - y)
    with pytest.raises(RuntimeError, match="closure"):
        one_step([tz.m.Multistep(tz.m.LR(0.1), 2)], closure=False)
    (u,), _ = one_step([tz.m.Multistep(tz.m.LR(0.1), 1)], closure=False)  # one inner step needs no closure
    torch.testing.assert_close(u, 0.1 * H * x)


def test_negate_on_loss_increase():
    g = grad_at(X0)
    (u,), opt = one_step([tz.m.LR(0.1), tz.m.NegateOnLossIncrease()])
    torch.testing.assert_close(u, 0.1 * g)
    assert opt.num_evaluations == 2
    (u,), _ = one_step([tz.m.LR(1.0), tz.m.NegateOnLossIncrease()])
    torch.testing.assert_close(u, torch.zeros(3, dtype=torch.float64))
    (u,), _ = one_step([tz.m.LR(1.0), tz.m.NegateOnLossIncrease(backtrack=True)])
    torch.testing.assert_close(u, -g)


# ---------------------------------------------------------------------------- Online
def test_online_is_transparent_on_a_deterministic_objective():
    a, _ = one_step([tz.m.HpuEstimate(), tz.m.LR(0.05)], steps=5)
    b, opt = one_step([tz.m.Online(tz.m.HpuEstimate()), tz.m.LR(0.05)], steps=5)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
    assert opt.num_evaluations == 1 + 2 * 4  # one extra evaluation per step after the first


def _minibatch_run(module_factory, online: bool, steps: int = 8):
    """A quadratic with a fixed Hessian A and a linear term that changes with every mini-batch."""
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=gen, dtype=torch.float64))
    A = q @ torch.diag(torch.tensor([1.0, 2.0, 3.0, 5.0], dtype=torch.float64)) @ q.T
    bs = [torch.randn(4, generator=gen, dtype=torch.float64) for _ in range(steps)]
    x = torch.ones(4, dtype=torch.float64, requires_grad=True)
    module = module_factory()
    opt = tz.Optimizer([x], tz.m.Online(module) if online else module, tz.m.LR(0.1))
    for k in range(steps):
        b = bs[k]  # this step's mini-batch
        opt.step(make_closure(opt, [x], lambda x, b=b: 0.5 * x @ A @ x - b @ x))
    return module, A


def test_online_lbfgs_keeps_curvature_pairs_consistent_on_minibatches():
    if "LBFGS" in tz.m.missing():
        pytest.skip("LBFGS is not implemented")
    module, A = _minibatch_run(lambda: tz.m.LBFGS(), online=True)
    s_hist, y_hist = module.global_state["s_history"], module.global_state["y_history"]
    assert len(s_hist) > 3
    for s, y in zip(s_hist, y_hist):  # both gradients of a pair come from one batch: y = A s exactly
        torch.testing.assert_close(y, A @ s)
    module, A = _minibatch_run(lambda: tz.m.LBFGS(), online=False)
    errs = [float((y - A @ s).norm()) for s, y in zip(module.global_state["s_history"], module.global_state["y_history"])]
    assert max(errs) > 1e-3  # without Online the pairs mix batches


def test_online_hpu_estimate_uses_one_batch_per_pair():
    module, A = _minibatch_run(lambda: tz.m.HpuEstimate(), online=True)
    st = module.state[next(iter(module.state))]
    # the last pair: prev_params / prev_update were refreshed at the current point; hpu = A s / ||s||
    assert "hpu" in st
    assert torch.isfinite(st["hpu"]).all()


def test_online_needs_closure():
    with pytest.raises(RuntimeError, match="closure"):
        one_step([tz.m.Online(tz.m.HpuEstimate()), tz.m.LR(0.1)], closure=False)


# ---------------------------------------------------------------------------- Split / Alternate / Switch
def test_split_filters():
    a = torch.tensor([1.0, -2.0], requires_grad=True)
    b = torch.tensor([[3.0, 0.5], [-1.0, 2.0]], requires_grad=True)
    fn = lambda a, b: (a ** 2).sum() + (b ** 2).sum()  # noqa: E731
    lin = torch.nn.Linear(2, 2)
    for filt in [lambda p: p.ndim >= 2, b, [b], [lambda p: False, b]]:
        a2, b2 = a.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
        if isinstance(filt, torch.Tensor):
            filt = b2
        elif isinstance(filt, list):
            filt = [b2 if isinstance(f, torch.Tensor) else f for f in filt]
        opt = tz.Optimizer([a2, b2], tz.m.Split(filt, true=tz.m.LR(0.5), false=tz.m.LR(0.1)))
        opt.step(make_closure(opt, [a2, b2], fn))
        torch.testing.assert_close(a2.detach(), a.detach() * (1 - 0.2))
        torch.testing.assert_close(b2.detach(), b.detach() * (1 - 1.0))
    # an nn.Module as the filter
    other = torch.nn.Parameter(torch.ones(3))
    opt = tz.Optimizer(list(lin.parameters()) + [other], tz.m.Split(lin, true=tz.m.LR(0.0), false=None))
    w0 = lin.weight.detach().clone()
    opt.zero_grad()
    (lin(torch.ones(2)).sum() + other.sum()).backward()
    opt.step()
    assert torch.equal(lin.weight.detach(), w0)
    torch.testing.assert_close(other.detach(), torch.zeros(3))


def _schedule(module, n):
    x = torch.zeros(1, requires_grad=True)
    opt = tz.Optimizer([x], module)
    out = []
    for _ in range(n):
        before = float(x)
        opt.zero_grad()
        x.sum().backward()
        opt.step()
        out.append(round(before - float(x), 6))
    return out


def test_alternate_and_switch_schedules():
    L = tz.m.LR
    assert _schedule(tz.m.Alternate(L(1), L(2), L(3)), 7) == [1, 2, 3, 1, 2, 3, 1]
    assert _schedule(tz.m.Alternate(L(1), L(2), L(3), steps=[1, 2, 3]), 8) == [1, 2, 2, 3, 3, 3, 1, 2]
    assert _schedule(tz.m.Switch(L(1), L(2), L(3), steps=2), 8) == [1, 1, 2, 2, 3, 3, 3, 3]
    assert _schedule(tz.m.Switch(L(1), L(2), L(3), steps=(2, 3)), 8) == [1, 1, 2, 2, 2, 3, 3, 3]
    assert _schedule(tz.m.Alternate(L(1), [L(2), L(5)]), 4) == [1, 10, 1, 10]
    with pytest.raises(ValueError):
        tz.m.Switch(L(1), L(2), steps=(1, 2))
    with pytest.raises(ValueError):
        tz.m.Alternate(L(1), L(2), steps=[1])


def test_print_modules_pickle_after_builtins_print_is_replaced(capsys) -> None:
    """Ray's tqdm support replaces ``builtins.print`` in the driver; a module with the default
    ``print_fn`` still pickles and prints through whatever ``print`` is then."""
    import builtins
    import pickle
    original = builtins.print
    m = tz.m.PrintLoss("loss: ")
    try:
        builtins.print = lambda *a, **k: original("patched", *a, **k)
        again = pickle.loads(pickle.dumps(m))
        one_step([again, tz.m.LR(0.1)])
    finally:
        builtins.print = original
    assert capsys.readouterr().out.startswith("patched loss: ")
