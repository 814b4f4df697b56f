"""Unit tests of the self-scaling quasi-Newton methods SSVM and NewSSM (quasi_newton/self_scaling.py)."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz
from torchzero.modules.quasi_newton.self_scaling import NewSSM, SSVM



@pytest.fixture(autouse=True)
def float64_by_default():
    """These tests build tensors in float64; the default is restored for the rest of the suite."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def _pair(n: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g)
    H = A @ A.T + 0.5 * torch.eye(n)
    G = torch.randn(n, n, generator=g)
    G = G @ G.T + torch.eye(n)
    s = torch.randn(n, generator=g)
    y = G @ s  # s'y > 0
    g_new = torch.randn(n, generator=g)
    return H, s, y, g_new


def _update(mod, H, s, y, g, state=None):
    setting = dict(mod.defaults)
    return mod.update_H(H.clone(), s, y, torch.zeros_like(s), g, torch.zeros_like(s), g - y, state or {}, setting)


def _quadratic(n: int = 8, cond: float = 100.0):
    q, _ = torch.linalg.qr(torch.sin(torch.arange(n * n, dtype=torch.float64) * 1.37).reshape(n, n))
    A = q @ torch.diag(torch.logspace(0, math.log10(cond), n)) @ q.T
    b = torch.cos(torch.arange(n, dtype=torch.float64))
    x = torch.zeros(n, requires_grad=True)
    xstar = torch.linalg.solve(A, b)
    return x, (lambda: 0.5 * x @ A @ x - b @ x), float(-0.5 * b @ xstar)


def _run(modules, x, f, steps):
    opt = tz.Optimizer([x], *modules)
    calls = [0]

    def closure(backward=True):
        calls[0] += 1
        loss = f()
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    for _ in range(steps):
        opt.step(closure)
    return float(f().detach()), calls[0]


# ---------------------------------------------------------------------- SSVM
@pytest.mark.parametrize("switch", [1, 2, 3, 4, (0.3, 0.6), (1.0, 0.0)])
def test_ssvm_secant_and_positive_definite(switch):
    H, s, y, g = _pair()
    H = H / 50  # make the scale matter (eps and omega/tau far from 1)
    Hn = _update(SSVM(switch=switch), H, s, y, g)
    torch.testing.assert_close(Hn @ y, s)
    torch.testing.assert_close(Hn, Hn.T)
    assert torch.linalg.eigvalsh(Hn).min() > 0


def test_ssvm_switches_differ():
    H, s, y, g = _pair(seed=3)
    H = H / 50
    outs = {str(sw): _update(SSVM(switch=sw), H, s, y, g) for sw in [1, 2, 4, (0.3, 0.6)]}
    keys = list(outs)
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            assert not torch.allclose(outs[keys[i]], outs[keys[j]]), (keys[i], keys[j])


def test_ssvm_pair_bfgs_end_is_oren_luenberger_scaled_bfgs():
    # phi = 0, theta = 1: gamma = s'y / y'Hy and the BFGS update of gamma * H
    H, s, y, g = _pair(seed=1)
    Hn = _update(SSVM(switch=(0.0, 1.0)), H, s, y, g)
    gamma = float(s @ y) / float(y @ H @ y)
    Hs = gamma * H
    rho = 1 / float(s @ y)
    I = torch.eye(len(s))
    expected = (I - rho * torch.outer(s, y)) @ Hs @ (I - rho * torch.outer(y, s)) + rho * torch.outer(s, s)
    torch.testing.assert_close(Hn, expected)


def test_ssvm_pair_dfp_end_is_scaled_dfp():
    H, s, y, g = _pair(seed=2)
    Hn = _update(SSVM(switch=(0.0, 0.0)), H, s, y, g)
    gamma = float(s @ y) / float(y @ H @ y)
    Hy = H @ y
    expected = gamma * (H - torch.outer(Hy, Hy) / float(y @ Hy)) + torch.outer(s, s) / float(s @ y)
    torch.testing.assert_close(Hn, expected)


def test_ssvm_switch3_rules():
    # Oren-Spedicato switching with omega = s'y, tau = y'Hy, eps = g's / g'Hy; H = I, s = (o/sqrt(t), 1, 0),
    # y = (sqrt(t), 0, 0), g chosen so that eps has the wanted value
    def make(o, t, e):
        rt = math.sqrt(t)
        s = torch.tensor([o / rt, 1.0, 0.0])
        y = torch.tensor([rt, 0.0, 0.0])
        g = torch.tensor([1.0, e * rt - o / rt, 0.0])
        return torch.eye(3), s, y, g

    def gamma_theta(Hn, H, s, y):
        Hy = H @ y
        tau, om = float(y @ Hy), float(s @ y)
        v = math.sqrt(tau) * (s / om - Hy / tau)
        A = torch.stack([(H - torch.outer(Hy, Hy) / tau).flatten(), torch.outer(v, v).flatten()], 1)
        a, b = torch.linalg.lstsq(A, (Hn - torch.outer(s, s) / om).flatten()).solution.tolist()
        return a, b / a

    # eps / omega < 1: DFP end
    H, s, y, g = make(1.5, 1.5, 0.8)
    gam, th = gamma_theta(_update(SSVM(switch=3), H, s, y, g), H, s, y)
    assert abs(th) < 1e-10 and gam == pytest.approx(1.0 + (0.8 / 1.5) * (0.8 - 1.0))
    # omega / tau > 1 (and eps / omega >= 1): BFGS end
    H, s, y, g = make(1.5, 0.5, 4.0)
    gam, th = gamma_theta(_update(SSVM(switch=3), H, s, y, g), H, s, y)
    assert th == pytest.approx(1.0) and gam == pytest.approx(3.0 + 3.0 * (4.0 - 3.0))
    # in between: gamma = eps, optimally conditioned theta (1 and 3 differ)
    H, s, y, g = make(0.5, 1.5, 0.8)
    gam, th = gamma_theta(_update(SSVM(switch=3), H, s, y, g), H, s, y)
    assert gam == pytest.approx(0.8) and th == pytest.approx(0.5 * (1.5 - 0.5) / (0.8 * 1.5 - 0.25))
    gam, th = gamma_theta(_update(SSVM(switch=1), H, s, y, g), H, s, y)
    assert gam == pytest.approx(0.8) and th == pytest.approx(0.5 * (0.8 - 0.5) / (0.8 * 1.5 - 0.25))


def test_ssvm_switch2_negative_eps_skips_update():
    # the reference fills H with NaN here (square root of a negative number); ours keeps H
    H = torch.eye(3)
    s, y, g = torch.tensor([1.0, 1.0, 0.0]), torch.tensor([1.0, 0.0, 0.0]), torch.tensor([1.0, -3.0, 1.0])
    Hn = _update(SSVM(switch=2), H, s, y, g)
    torch.testing.assert_close(Hn, H)


def test_ssvm_skips_negative_curvature():
    H, s, y, g = _pair()
    torch.testing.assert_close(_update(SSVM(), H, s, -y, g), H)


@pytest.mark.parametrize("bad", [0, 5, (1.0,), (1.0, 2.0, 3.0), "auto", True])
def test_ssvm_bad_switch(bad):
    with pytest.raises(ValueError, match="switch"):
        SSVM(switch=bad)


@pytest.mark.parametrize("switch", [1, 2, 3, 4])
def test_ssvm_converges_on_ill_conditioned_quadratic(switch):
    x, f, fstar = _quadratic()
    loss, _ = _run([SSVM(switch=switch), tz.m.Backtracking()], x, f, 40)
    # switches 2 and 4 mix eps into the scale-dependent rules and converge more slowly
    assert loss - fstar < (1e-6 if switch in (1, 3) else 1e-2 * abs(fstar))


def test_ssvm_rosenbrock():
    x = torch.tensor([-1.1, 2.5], requires_grad=True)
    f = lambda: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2  # noqa: E731
    loss, _ = _run([SSVM(switch=1), tz.m.StrongWolfe()], x, f, 100)
    assert loss < 1e-6


def test_ssvm_get_H():
    x, f, _ = _quadratic()
    opt = tz.Optimizer([x], SSVM(), tz.m.Backtracking())
    for _ in range(3):
        def closure(backward=True):
            loss = f()
            if backward:
                opt.zero_grad()
                loss.backward()
            return loss
        opt.step(closure)
    op = opt.modules[0].get_H()
    v = torch.randn(8)
    H = opt.modules[0].state[opt.modules[0]._fake_params["__concat"][0]]["H"]
    torch.testing.assert_close(op.matvec(H @ v), v)


# ---------------------------------------------------------------------- NewSSM
def _psi(ty, omega, df):
    return 2 * (omega - df) / omega if ty == 1 else 0.5 / omega ** 2 + df / omega


@pytest.mark.parametrize("ty", [1, 2])
def test_newssm_scaled_secant_and_positive_definite(ty):
    H, s, y, g = _pair()
    omega = float(s @ y)
    df = 0.2 * omega  # psi > 0 for both types
    Hn = _update(NewSSM(type=ty), H, s, y, g, {"f": torch.tensor(1.0), "f_prev": torch.tensor(1.0 + df)})
    psi = _psi(ty, omega, df)
    torch.testing.assert_close(Hn @ (psi * y), s)
    assert torch.linalg.eigvalsh(Hn).min() > 0


def test_newssm_type1_is_bfgs_for_quadratic_decrease():
    # exact line search on a quadratic: f_prev - f = s'y / 2, so psi = 1 and the update is BFGS
    H, s, y, g = _pair(seed=4)
    omega = float(s @ y)
    Hn = _update(NewSSM(type=1), H, s, y, g, {"f": torch.tensor(0.0), "f_prev": torch.tensor(omega / 2)})
    rho = 1 / omega
    I = torch.eye(len(s))
    torch.testing.assert_close(Hn, (I - rho * torch.outer(s, y)) @ H @ (I - rho * torch.outer(y, s)) + rho * torch.outer(s, s))


def test_newssm_types_differ_and_depend_on_loss():
    H, s, y, g = _pair()
    st = lambda f, fp: {"f": torch.tensor(f), "f_prev": torch.tensor(fp)}  # noqa: E731
    a = _update(NewSSM(type=1), H, s, y, g, st(1.0, 1.5))
    b = _update(NewSSM(type=2), H, s, y, g, st(1.0, 1.5))
    c = _update(NewSSM(type=1), H, s, y, g, st(1.0, 1.2))
    assert not torch.allclose(a, b) and not torch.allclose(a, c)


def test_newssm_nonpositive_scale_skips_update():
    # the reference applies this update and gets an indefinite H; ours skips it like BFGS skips s'y <= 0
    H, s, y, g = _pair()
    omega = float(s @ y)
    Hn = _update(NewSSM(type=1), H, s, y, g, {"f": torch.tensor(0.0), "f_prev": torch.tensor(3 * omega)})
    torch.testing.assert_close(Hn, H)


def test_newssm_bad_type():
    with pytest.raises(ValueError, match="type"):
        NewSSM(type=3)


def test_newssm_needs_closure():
    x = torch.ones(3, requires_grad=True)
    opt = tz.Optimizer([x], NewSSM(), tz.m.LR(0.1))
    (x ** 2).sum().backward()
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()


@pytest.mark.parametrize("ty", [1, 2])
def test_newssm_converges_with_line_search(ty):
    x, f, fstar = _quadratic()
    loss, calls = _run([NewSSM(type=ty), tz.m.StrongWolfe()], x, f, 40)
    assert loss - fstar < (1e-6 if ty == 1 else 1e-4)


def test_newssm_one_evaluation_for_loss_and_gradient():
    x, f, _ = _quadratic()
    _, calls = _run([NewSSM(type=2), tz.m.LR(1e-3)], x, f, 5)
    assert calls == 5
