"""Projections: modules stepping in a projected space (seed 004)."""
from __future__ import annotations

import io

import pytest
import torch

import torchzero as tz
from torchzero.modules.projections import ProjectionBase


def problem(dtype=torch.float64):
    a = torch.tensor([1.0, -2.0, 0.5], dtype=dtype, requires_grad=True)
    b = torch.tensor([[3.0, 0.5], [-1.0, 2.0]], dtype=dtype, requires_grad=True)
    fn = lambda: (a ** 2).sum() + 2 * (b ** 4).sum() + (a.sum() * b.sum()) ** 2  # noqa: E731
    return [a, b], fn


def run(mods, steps=5, closure=True, dtype=torch.float64):
    params, fn = problem(dtype)
    opt = tz.Optimizer(params, *mods)
    for _ in range(steps):
        if closure:
            def cl(backward=True):
                loss = fn()
                if backward:
                    opt.zero_grad()
                    loss.backward()
                return loss
            opt.step(cl)
        else:
            opt.zero_grad()
            fn().backward()
            opt.step()
    return [p.detach().clone() for p in params], opt


class Record(tz.Module):
    """Records the shapes of the parameters, gradients and update it sees."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def apply(self, objective):
        self.seen.append(([tuple(p.shape) for p in objective.params], [tuple(g.shape) for g in objective.get_grads()],
                          [u.dtype for u in objective.peek_updates()]))
        return objective


@pytest.mark.parametrize("proj", ["VectorProjection", "ScalarProjection"])
@pytest.mark.parametrize("closure", [True, False])
def test_projection_of_an_elementwise_method_changes_nothing(proj, closure):
    expected, _ = run([tz.m.Adam(), tz.m.LR(0.05)], closure=closure)
    got, opt = run([getattr(tz.m, proj)(tz.m.Adam()), tz.m.LR(0.05)], closure=closure)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    if closure:
        assert opt.num_evaluations == 5  # the projected gradient comes from the one evaluation per step


def test_modules_see_projected_tensors():
    r = Record()
    run([tz.m.VectorProjection(r), tz.m.LR(0.01)], steps=1)
    assert r.seen[0][0] == [(7,)] and r.seen[0][1] == [(7,)]
    r = Record()
    run([tz.m.ScalarProjection(r), tz.m.LR(0.01)], steps=1)
    assert r.seen[0][0] == [()] * 7
    r = Record()
    run([tz.m.To(r, dtype=torch.float64), tz.m.LR(0.01)], steps=1, dtype=torch.float32)
    assert r.seen[0][2] == [torch.float64, torch.float64]


def test_loss_and_grads_evaluated_inside_reach_the_parent():
    params, fn = problem()
    opt = tz.Optimizer(params, tz.m.VectorProjection(tz.m.FillLoss(0.01)), tz.m.GradSign(), tz.m.LR(0.1))
    before = [p.detach().clone().requires_grad_(True) for p in params]
    a, b = before
    f0 = (a ** 2).sum() + 2 * (b ** 4).sum() + (a.sum() * b.sum()) ** 2
    grads = torch.autograd.grad(f0, before)

    def cl(backward=True):
        loss = fn()
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    loss = opt.step(cl)
    assert float(loss.detach()) == pytest.approx(float(f0.detach()))  # the loss computed inside is the step's loss
    assert opt.num_evaluations == 1  # GradSign outside reuses the gradient evaluated inside
    for x0, p, g in zip(before, params, grads):
        torch.testing.assert_close(x0.detach() - p.detach(), 0.1 * 0.01 * float(f0.detach()) * g.sign())


def test_closure_moves_the_original_parameters_and_restores_them():
    expected, _ = run([tz.m.LR(0.3), tz.m.NegateOnLossIncrease(backtrack=True)])
    got, opt = run([tz.m.VectorProjection([tz.m.LR(0.3), tz.m.NegateOnLossIncrease(backtrack=True)])])
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert opt.num_evaluations == 10


def test_to_float64_state_for_float32_parameters():
    got, opt = run([tz.m.To(tz.m.Adam(), dtype=torch.float64), tz.m.LR(0.05)], dtype=torch.float32)
    ref, _ = run([tz.m.Adam(), tz.m.LR(0.05)], dtype=torch.float64)
    adam = opt.modules[0].children["modules"]
    assert all(st["exp_avg"].dtype == torch.float64 for st in adam.state.values())
    for a, b in zip(got, ref):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a.double(), b, rtol=1e-6, atol=1e-6)


def test_view_as_real_complex_parameters():
    c = torch.tensor([1.0 + 2.0j, -0.5 + 0.25j], dtype=torch.complex128)
    z = torch.zeros(2, dtype=torch.complex128, requires_grad=True)
    r = Record()
    opt = tz.Optimizer([z], tz.m.ViewAsReal([r, tz.m.Adam()]), tz.m.LR(0.05))
    for _ in range(300):
        def cl(backward=True):
            loss = (z - c).abs().pow(2).sum()
            if backward:
                opt.zero_grad()
                loss.backward()
            return loss
        opt.step(cl)
    assert r.seen[0][0] == [(2, 2)] and r.seen[0][2] == [torch.float64]
    torch.testing.assert_close(z.detach(), c, atol=1e-3, rtol=0)
    # the same as Adam on the real view
    x = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    cr = torch.view_as_real(c)
    opt2 = tz.Optimizer([x], tz.m.Adam(), tz.m.LR(0.05))
    for _ in range(300):
        opt2.zero_grad()
        ((x - cr) ** 2).sum().backward()
        opt2.step()
    torch.testing.assert_close(torch.view_as_real(z.detach()), x.detach(), rtol=1e-9, atol=1e-9)


class Halve(ProjectionBase):
    """A custom projection: the projected space is the parameters times 2."""

    def project(self, tensors, params, grads, loss, states, settings, current):
        return [t * 2 if current != "grads" else t / 2 for t in tensors]

    def unproject(self, projected_tensors, params, grads, loss, states, settings, current):
        return [t / 2 for t in projected_tensors]


def test_custom_projection_and_project_params_false():
    # gradient descent in y = 2x with the gradient df/dy = g/2 is gradient descent in x with lr / 4
    expected, _ = run([tz.m.LR(0.05 / 4)])
    got, _ = run([Halve(tz.m.LR(0.05), project_params=True, project_grad=True)])
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    # without projected parameters the closure still evaluates the current point
    got, opt = run([Halve([tz.m.FillLoss(0.001)], project_params=False), tz.m.LR(1.0)], steps=2)
    assert opt.num_evaluations == 2


def test_state_survives_state_dict_and_pickle():
    _, opt = run([tz.m.VectorProjection(tz.m.Adam()), tz.m.LR(0.05)], steps=3)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    params2 = [p.detach().clone().requires_grad_(True) for p in opt.param_groups[0]["params"]]
    opt2 = tz.Optimizer(params2, tz.m.VectorProjection(tz.m.Adam()), tz.m.LR(0.05))
    opt2.load_state_dict(torch.load(buf, weights_only=True))
    for o in (opt, opt2):
        ps = o.param_groups[0]["params"]
        o.zero_grad()
        ((ps[0] ** 2).sum() + 2 * (ps[1] ** 4).sum() + (ps[0].sum() * ps[1].sum()) ** 2).backward()
        o.step()
    for a, b in zip(opt.param_groups[0]["params"], params2):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=0)
    adam = opt2.modules[0].children["modules"]
    assert len(adam.state) == 1 and all(st["exp_avg"].shape == (7,) for st in adam.state.values())


class Jump(tz.Module):
    """Moves its parameters itself by -0.1 * grad and skips the update (like a line search would)."""

    def apply(self, objective):
        with torch.no_grad():
            for p, g in zip(objective.params, objective.get_grads()):
                p.sub_(0.1 * g)
        objective.skip_update = True
        return objective


def test_modules_that_move_projected_parameters_move_the_originals():
    expected, _ = run([tz.m.LR(0.1)], steps=3)
    got, _ = run([tz.m.VectorProjection(Jump())], steps=3)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


def test_print_inside_projection():
    lines = []
    run([tz.m.VectorProjection([tz.m.PrintShape(print_fn=lines.append), tz.m.PrintUpdate(print_fn=lines.append)]), tz.m.LR(0.1)], steps=1)
    assert lines[0] == "shapes = [(7,)]" and lines[1].startswith("update = ")
