"""Gradient approximators: estimator maths on problems with known gradients, options, convergence."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import torchzero as tz
from torchzero.modules.grad_approximation.formulas import STENCILS

ROOT = Path(__file__).resolve().parents[2]
N = 6
W = torch.arange(1, N + 1, dtype=torch.float64)
X0 = torch.linspace(-1, 1.5, N, dtype=torch.float64)


def quad(x):
    return 0.5 * (W * x * x).sum() + x.sum()


def quad_grad(x):
    return W * x + 1


def cubic(x):
    return (torch.exp(0.5 * x) + x ** 3).sum()


def cubic_grad(x):
    return 0.5 * torch.exp(0.5 * x) + 3 * x ** 2


def estimate(module, fn=quad, x0=X0, seed=0):
    """The estimate of one step (target='update' semantics via the final update)."""
    torch.manual_seed(seed)
    x = x0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], module, tz.m.LR(1.0))

    def closure(backward=True):
        loss = fn(x)
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    opt.step(closure)
    return (x0 - x.detach()), opt


# ---------------------------------------------------------------------------- FDM
def test_fdm_central_is_exact_on_quadratics():
    g, _ = estimate(tz.m.FDM(h=0.1))
    assert torch.allclose(g, quad_grad(X0), atol=1e-10)


@pytest.mark.parametrize("formula, order", [("forward", 1), ("backward", 1), ("central", 2), ("central3", 2),
                                            ("forward3", 2), ("backward3", 2), ("central4", 4), ("forward4", 3),
                                            ("forward5", 4)])
def test_fdm_error_order(formula, order):
    errs = []
    for h in (0.1, 0.05):
        g, _ = estimate(tz.m.FDM(h=h, formula=formula), fn=cubic)
        errs.append(float((g - cubic_grad(X0)).abs().max()))
    rate = math.log2(errs[0] / errs[1])
    assert rate == pytest.approx(order, abs=0.35), (formula, errs)


def test_stencil_weights_differentiate_polynomials_exactly():
    for name, (offsets, weights) in STENCILS.items():
        # sum w_k o_k = 1 (first derivative), sum w_k = 0 (constants vanish)
        assert sum(weights) == pytest.approx(0, abs=1e-12), name
        assert sum(w * o for w, o in zip(weights, offsets)) == pytest.approx(1, abs=1e-12), name


def test_unknown_formula_and_bad_arguments():
    with pytest.raises(ValueError, match="formula"):
        tz.m.FDM(formula="bspsa4")
    with pytest.raises(ValueError, match="formula"):
        tz.m.SPSA(formula="nope")
    with pytest.raises(ValueError, match="target"):
        tz.m.FDM(target="params")
    with pytest.raises(ValueError, match="h"):
        tz.m.SPSA(h=0)
    with pytest.raises(ValueError, match="n_samples"):
        tz.m.RDSA(n_samples=0)


def test_fdm_per_parameter_h():
    a = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([-1.0], dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([{"params": [a], "h": 0.5}, {"params": [b], "h": 1e-4}], tz.m.FDM(formula="forward"), tz.m.LR(1.0))

    def closure(backward=True):
        return (a ** 2).sum() + (b ** 2).sum()
    opt.step(closure)
    # forward difference of x^2: 2x + h
    assert torch.allclose(torch.tensor([1.0, 2.0], dtype=torch.float64) - a.detach(), torch.tensor([2.5, 4.5], dtype=torch.float64))
    assert float(-1.0 - b.detach()) == pytest.approx(-2 + 1e-4, abs=1e-8)


# ---------------------------------------------------------------------------- randomized estimators
class _Record(tz.Module):
    def __init__(self, out):
        super().__init__()
        self.out = out

    def apply(self, objective):
        self.out.append(torch.cat([u.reshape(-1) for u in objective.get_updates()]).clone())
        return objective


def samples(module, n, fn=quad, x0=X0):
    """``n`` estimates at the same point (the step size is 0), as rows."""
    out: list = []
    x = x0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], module, _Record(out), tz.m.LR(0.0))

    def closure(backward=True):
        loss = fn(x)
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    torch.manual_seed(0)
    for _ in range(n):
        opt.step(closure)
    return torch.stack(out)


@pytest.mark.parametrize("make", [
    lambda: tz.m.SPSA(h=1e-3, seed=0, target="update"),
    lambda: tz.m.RDSA(h=1e-3, seed=1),
    lambda: tz.m.RandomizedFDM(h=1e-3, distribution="uniform", seed=2),
    lambda: tz.m.RandomizedFDM(h=1e-3, distribution="sphere", formula="central4", seed=3),
    lambda: tz.m.MeZO(h=1e-3),
    lambda: tz.m.ForwardGradient(seed=4),
], ids=["SPSA", "RDSA", "uniform", "sphere-central4", "MeZO", "ForwardGradient"])
def test_randomized_estimates_are_unbiased(make):
    gs = samples(make(), 400)
    mean, var = gs.mean(0), gs.var(0)
    se = (var / len(gs)).sqrt()  # standard error of the mean
    assert ((mean - quad_grad(X0)).abs() <= 5 * se + 1e-6).all(), (mean, quad_grad(X0))


def test_spsa_variance_matches_theory():
    # with Rademacher d and central differences on a quadratic the estimate is (g.d) d exactly, so
    # Var[estimate_j] = sum_{k != j} g_k^2
    var = samples(tz.m.SPSA(h=1e-3, seed=0), 1500).var(0)
    g = quad_grad(X0)
    assert torch.allclose(var, (g ** 2).sum() - g ** 2, rtol=0.15)


def test_n_samples_averages_the_samples():
    # n_samples=k is the mean of k single-sample estimates: the variance drops by k
    v1 = samples(tz.m.RDSA(seed=0), 800).var(0).sum()
    v4 = samples(tz.m.RDSA(seed=1, n_samples=4), 800).var(0).sum()
    assert 3.0 < float(v1 / v4) < 5.3


def test_spsa_bias_is_second_order_in_h():
    # on exp(0.5 x) + x^3, with the same directions (same seed), the central estimate differs from
    # its h -> 0 limit by O(h^2)
    def err(h):
        g, _ = estimate(tz.m.SPSA(h=h, seed=3), fn=cubic)
        ge, _ = estimate(tz.m.SPSA(h=1e-6, seed=3), fn=cubic)
        return float((g - ge).abs().max())
    assert math.log2(err(0.1) / err(0.05)) == pytest.approx(2, abs=0.3)


def test_gaussian_smoothing_mean_matches_the_gradient_of_a_quadratic():
    # for a quadratic, grad f_h = grad f and the forward-difference term (h/2)(d'Hd) d averages to 0
    gs = samples(tz.m.GaussianSmoothing(h=0.05, n_samples=20, seed=0), 200)
    se = (gs.var(0) / len(gs)).sqrt()
    assert ((gs.mean(0) - quad_grad(X0)).abs() <= 5 * se).all()


def test_spsa1_is_unbiased_to_first_order():
    # E[f(x + h d) d / h] = grad f(x) + O(h); the variance carries f(x)^2 / h^2, so center f at x
    gs = samples(tz.m.SPSA1(h=0.01, seed=0), 1500, fn=lambda x: quad(x) - quad(X0))
    se = (gs.var(0) / len(gs)).sqrt()
    assert ((gs.mean(0) - quad_grad(X0)).abs() <= 5 * se + 0.05).all()


def test_spsa1_formula():
    g, _ = estimate(tz.m.SPSA1(h=0.1, eps=0.5, seed=11))
    # g = (f(x + h d) + eps) d / h for the module's Rademacher direction d (= +-sign(g))
    d = g.sign()
    assert any(torch.allclose(g, (quad(X0 + 0.1 * c) + 0.5) * c / 0.1) for c in (d, -d))


def test_seed_reproducibility_and_generator():
    a, _ = estimate(tz.m.SPSA(seed=42), seed=1)
    b, _ = estimate(tz.m.SPSA(seed=42), seed=2)  # the global RNG does not matter with a seed
    c, _ = estimate(tz.m.SPSA(seed=43), seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    g1 = torch.Generator().manual_seed(5)
    g2 = torch.Generator().manual_seed(5)
    assert torch.equal(estimate(tz.m.SPSA(seed=g1))[0], estimate(tz.m.SPSA(seed=g2))[0])
    with pytest.raises(TypeError, match="seed"):
        tz.m.SPSA(seed="abc")


def test_mezo_equals_spsa_for_the_same_directions():
    torch.manual_seed(0)
    a, _ = estimate(tz.m.MeZO(h=1e-2), seed=9)
    b, _ = estimate(tz.m.SPSA(h=1e-2, formula="central2"), seed=9)
    assert torch.equal(a, b)


def test_forward_gradient_methods_agree():
    a, _ = estimate(tz.m.ForwardGradient(n_samples=3, seed=1))
    b, _ = estimate(tz.m.ForwardGradient(n_samples=3, seed=1, jvp_method="central", h=1e-4))
    c, _ = estimate(tz.m.ForwardGradient(n_samples=3, seed=1, jvp_method="forward", h=1e-6))
    assert torch.allclose(a, b, atol=1e-8)
    assert torch.allclose(a, c, atol=1e-4)
    with pytest.raises(ValueError, match="jvp_method"):
        tz.m.ForwardGradient(jvp_method="reverse")


# ---------------------------------------------------------------------------- targets, losses, closures
def _loss_seen_by_next(module):
    seen = {}

    class Peek(tz.Module):
        def apply(self, objective):
            seen["grads"] = [g.clone() for g in objective.get_grads()]
            seen["closure_loss"] = float(objective.closure(False).detach())
            with torch.enable_grad():
                objective.closure(True)
            seen["closure_grad"] = objective.params[0].grad.clone()
            return objective
    x = X0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], module, Peek(), tz.m.LR(0.0))

    def closure(backward=True):
        loss = quad(x)
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    opt.step(closure)
    return seen


def test_target_closure_replaces_later_gradients():
    s = _loss_seen_by_next(tz.m.FDM(h=0.1, formula="forward"))
    # the closure now returns the forward-difference estimate (not the exact gradient)
    fd = quad_grad(X0) + 0.05 * W
    assert torch.allclose(s["closure_grad"], fd, atol=1e-10)
    assert torch.allclose(s["grads"][0], fd, atol=1e-10)
    assert s["closure_loss"] == pytest.approx(float(quad(X0)))


def test_target_grad_keeps_the_true_closure():
    s = _loss_seen_by_next(tz.m.FDM(h=0.1, formula="forward", target="grad"))
    fd = quad_grad(X0) + 0.05 * W
    assert torch.allclose(s["grads"][0], fd, atol=1e-10)
    assert torch.allclose(s["closure_grad"], quad_grad(X0), atol=1e-12)


def test_target_update_leaves_gradients_alone():
    g, _ = estimate(tz.m.FDM(h=0.1, formula="forward", target="update"))
    assert torch.allclose(g, quad_grad(X0) + 0.05 * W, atol=1e-10)


def test_step_returns_loss_or_nearby_loss():
    x = X0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], tz.m.FDM(h=0.1), tz.m.LR(0.0))
    loss = opt.step(lambda backward=True: quad(x))
    # central stencils never evaluate f(x): the loss at the first perturbed point is reported
    e0 = torch.zeros(N, dtype=torch.float64)
    e0[0] = 0.1
    assert float(loss) == pytest.approx(float(quad(X0 + e0)))
    opt2 = tz.Optimizer([x], tz.m.FDM(h=0.1, formula="forward"), tz.m.LR(0.0))
    assert float(opt2.step(lambda backward=True: quad(x))) == pytest.approx(float(quad(X0)))


def test_pre_generate_keeps_directions_within_a_step():
    for pre, same in ((True, True), (False, False)):
        grads = []

        class TwoCalls(tz.Module):
            def apply(self, objective):
                for _ in range(2):
                    with torch.enable_grad():
                        objective.closure(True)
                    grads.append(objective.params[0].grad.clone())
                return objective
        x = X0.clone().requires_grad_(True)
        opt = tz.Optimizer([x], tz.m.SPSA(pre_generate=pre, seed=0), TwoCalls(), tz.m.LR(0.0))
        opt.step(lambda backward=True: quad(x))
        assert torch.equal(grads[0], grads[1]) == same


def test_return_approx_loss_in_closure():
    x = X0.clone().requires_grad_(True)
    n = [0]

    def closure(backward=True):
        n[0] += 1
        return quad(x)
    for approx, evals in ((False, 3), (True, 2)):
        n[0] = 0
        opt = tz.Optimizer([x], tz.m.SPSA(return_approx_loss=approx, seed=0), tz.m.LR(0.0))
        opt.step(closure)
        n[0] = 0
        obj_closure_loss = None

        class Call(tz.Module):
            def apply(self, objective):
                nonlocal obj_closure_loss
                with torch.enable_grad():
                    obj_closure_loss = float(objective.closure(True))
                return objective
        opt = tz.Optimizer([x], tz.m.SPSA(return_approx_loss=approx, seed=0), Call(), tz.m.LR(0.0))
        opt.step(closure)
        assert n[0] == 2 + evals
        if not approx:
            assert obj_closure_loss == pytest.approx(float(quad(X0)))


def test_plain_closure_without_backward_argument():
    x = X0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], tz.m.SPSA(seed=0), tz.m.LR(1e-2))

    def plain():
        opt.zero_grad()
        loss = quad(x)
        loss.backward()
        return loss
    for _ in range(20):
        opt.step(plain)
    assert float(quad(x.detach())) < float(quad(X0))
    assert opt.num_evaluations == 40


def test_needs_a_closure():
    x = X0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], tz.m.SPSA(), tz.m.LR(1e-2))
    quad(x).backward()
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()


def test_fdm_with_line_search_style_reuse():
    # a second module calling the closure at another point gets an estimate there
    x = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    seen = []

    class Probe(tz.Module):
        def apply(self, objective):
            with torch.no_grad():
                x.add_(1.0)
            with torch.enable_grad():
                objective.closure(True)
            seen.append(x.grad.clone())
            with torch.no_grad():
                x.sub_(1.0)
            return objective
    opt = tz.Optimizer([x], tz.m.FDM(h=1e-3), Probe(), tz.m.LR(0.0))
    opt.step(lambda backward=True: (x ** 2).sum())
    assert torch.allclose(seen[0], torch.tensor([4.0, 0.0], dtype=torch.float64), atol=1e-8)


# ---------------------------------------------------------------------------- convergence vs the reference
CONV_SCRIPT = r'''
import json, sys, torch
if sys.argv[1] == "ref":
    sys.path.insert(0, ".reference")
else:
    sys.path.insert(0, ".")
import torchzero as tz
if sys.argv[1] == "ref":
    assert ".reference" in tz.__file__
def problems(n):
    q, _ = torch.linalg.qr(torch.sin(torch.arange(n * n, dtype=torch.float64).reshape(n, n) * 1.37 + 0.3))
    A = q @ torch.diag(torch.logspace(0, 2, n, dtype=torch.float64)) @ q.T
    return {
        "sphere": (lambda x: (x ** 2).sum(), torch.ones(n, dtype=torch.float64)),
        "rosenbrock": (lambda x: ((1 - x[:-1]) ** 2).sum() + 100 * ((x[1:] - x[:-1] ** 2) ** 2).sum(), torch.full((n,), -0.5, dtype=torch.float64)),
        "illcond": (lambda x: 0.5 * x @ A @ x, torch.ones(n, dtype=torch.float64)),
    }
out = {}
for key, (build, prob, n, budget, seeds) in json.loads(sys.argv[2]).items():
    fn, x0 = problems(n)[prob]
    finals = []
    for s in range(seeds):
        torch.manual_seed(s)
        x = x0.clone().requires_grad_(True)
        opt = tz.Optimizer([x], *eval("[" + build + "]", {"tz": tz}))
        def closure(backward=True):
            with torch.no_grad():
                return fn(x)
        while opt.num_evaluations < budget:
            opt.step(closure)
        finals.append(float(fn(x.detach())))
    out[key] = sum(finals) / len(finals)
print("RESULT " + json.dumps(out))
'''

CONV_SETTINGS = {
    "SPSA-rosenbrock-10": ["tz.m.SPSA(h=1e-3), tz.m.LR(2e-4)", "rosenbrock", 10, 300, 3],
    "RDSA-illcond-10": ["tz.m.RDSA(h=1e-3), tz.m.LR(2e-3)", "illcond", 10, 300, 3],
    "SPSA-illcond-100": ["tz.m.SPSA(h=1e-3, n_samples=2), tz.m.LR(4e-4)", "illcond", 100, 400, 2],
    "GaussianSmoothing-sphere-10": ["tz.m.GaussianSmoothing(h=1e-2, n_samples=10), tz.m.LR(1e-2)", "sphere", 10, 220, 3],
}


def _conv(which):
    p = subprocess.run([sys.executable, "-I", "-c", CONV_SCRIPT, which, json.dumps(CONV_SETTINGS)], capture_output=True,
                       text=True, cwd=str(ROOT))
    assert p.returncode == 0, p.stderr[-2000:]
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


@pytest.mark.skipif(not (ROOT / ".reference" / "torchzero").exists(), reason="reference not installed (scripts/golden.py installs it)")
def test_convergence_at_a_fixed_budget_at_least_as_good_as_the_reference():
    ours, ref = _conv("ours"), _conv("ref")
    for key in CONV_SETTINGS:
        # the same settings and evaluation budget; random streams differ, so allow noise
        assert ours[key] <= 1.25 * ref[key] + 1e-8, f"{key}: ours {ours[key]:.4g} vs reference {ref[key]:.4g}"
