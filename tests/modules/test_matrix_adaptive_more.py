"""Unit tests for MatrixMomentum (and further matrix_adaptive modules)."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz

A = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.5]], dtype=torch.float64)
B = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)


def _quad(x):
    return 0.5 * x @ A @ x - B @ x


def _run(modules, steps, x0=(1.0, -2.0, 0.5)):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([x], *modules(x) if callable(modules) else modules)

    def closure(backward=True):
        loss = _quad(x)
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss

    traj = [x.detach().clone()]
    for _ in range(steps):
        opt.step(closure)
        traj.append(x.detach().clone())
    return traj


def test_matrix_momentum_rule_on_quadratic():
    lr, mu = 0.1, 0.3
    traj = _run([tz.m.MatrixMomentum(lr=lr, mu=mu)], 6)
    I = torch.eye(3, dtype=torch.float64)
    for k in range(len(traj) - 1):
        g = A @ traj[k] - B
        expected = -lr * g
        if k >= 2:
            d = traj[k] - traj[k - 1]
            expected = expected + (I - mu * A) @ d
        torch.testing.assert_close(traj[k + 1] - traj[k], expected)


def test_matrix_momentum_mu_zero_is_unit_heavy_ball_term():
    # with mu = 0 the momentum term is the full previous step (I - 0*H = I)
    traj = _run([tz.m.MatrixMomentum(lr=0.05, mu=0.0)], 4)
    g3 = A @ traj[3] - B
    torch.testing.assert_close(traj[4] - traj[3], -0.05 * g3 + (traj[3] - traj[2]))


def test_matrix_momentum_converges():
    xstar = torch.linalg.solve(A, B)
    traj = _run([tz.m.MatrixMomentum(lr=0.3, mu=0.45)], 200)
    assert torch.linalg.vector_norm(traj[-1] - xstar) < 1e-6


@pytest.mark.parametrize("method", ["batched_autograd", "fd_forward", "fd_central"])
def test_matrix_momentum_hvp_methods_agree(method):
    ref = _run([tz.m.MatrixMomentum(lr=0.1, mu=0.3)], 6)
    other = _run([tz.m.MatrixMomentum(lr=0.1, mu=0.3, hvp_method=method, h=1e-4)], 6)
    torch.testing.assert_close(other[-1], ref[-1], rtol=1e-5, atol=1e-6)


def test_matrix_momentum_mu_and_inner_change_the_result():
    base = _run([tz.m.MatrixMomentum(lr=0.1, mu=0.1)], 5)[-1]
    assert not torch.allclose(base, _run([tz.m.MatrixMomentum(lr=0.1, mu=0.4)], 5)[-1])
    assert not torch.allclose(base, _run([tz.m.MatrixMomentum(lr=0.1, mu=0.1, inner=tz.m.Mul(2.0))], 5)[-1])
    # inner output is what gets scaled by lr: Mul(2) inside with lr equals lr doubled
    torch.testing.assert_close(_run([tz.m.MatrixMomentum(lr=0.05, mu=0.1, inner=tz.m.Mul(2.0))], 5)[-1], base)


def test_matrix_momentum_errors():
    with pytest.raises(ValueError, match="hvp_method"):
        tz.m.MatrixMomentum(lr=0.1, hvp_method="bogus")
    with pytest.raises(NotImplementedError):
        tz.m.MatrixMomentum(lr=0.1, adaptive=True)
    x = torch.zeros(2, requires_grad=True)
    opt = tz.Optimizer([x], tz.m.MatrixMomentum(lr=0.1))
    x.grad = torch.ones(2)
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()


# -- NaturalGradient --------------------------------------------------------------------------------

def _ng_setup():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(5, 3, generator=g, dtype=torch.float64)
    y = torch.randn(5, generator=g, dtype=torch.float64)
    x = torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64, requires_grad=True)
    losses = lambda: (W @ x - y) ** 2 + torch.sin(x).sum()  # noqa: E731
    G = torch.autograd.functional.jacobian(lambda v: (W @ v - y) ** 2 + torch.sin(v).sum(), x.detach())
    return x, losses, G


def _ng_step(module, use_loss_kwarg=False):
    x, losses, G = _ng_setup()
    x0 = x.detach().clone()
    opt = tz.Optimizer([x], module, tz.m.LR(1.0))
    out = opt.step(loss=losses()) if use_loss_kwarg else opt.step(lambda backward=True: losses())
    return x0 - x.detach(), G, out, losses


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("use_loss_kwarg", [False, True])
def test_natural_gradient_formula(batched, use_loss_kwarg):
    reg = 0.3
    upd, G, out, _ = _ng_step(tz.m.NaturalGradient(reg=reg, batched=batched), use_loss_kwarg)
    F = G.T @ G + reg * torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(upd, torch.linalg.solve(F, G.sum(0)))
    assert out.shape == (5,)  # step returns the per-sample losses


@pytest.mark.parametrize("gn_grad", [False, True])
def test_natural_gradient_sqrt_whitening(gn_grad):
    reg = 0.2
    upd, G, _, _ = _ng_step(tz.m.NaturalGradient(reg=reg, sqrt=True, gn_grad=gn_grad))
    L, Q = torch.linalg.eigh(G.T @ G + reg * torch.eye(3, dtype=torch.float64))
    _, losses0, _ = _ng_setup()  # the losses at the starting point
    w = losses0().detach() if gn_grad else torch.ones(5, dtype=torch.float64)
    expected = Q @ torch.diag(L.rsqrt()) @ Q.T @ (G.T @ w)
    torch.testing.assert_close(upd, expected)


def test_natural_gradient_gn_grad_sets_gradient_and_scalar_loss_works():
    # the gradient seen by later modules is G^T f with gn_grad; a scalar (0-d) loss is one sample
    x, losses, G = _ng_setup()
    seen = {}

    class Spy(tz.m.LR):
        def apply(self, objective):
            seen["g"] = torch.cat([g.reshape(-1) for g in objective.grads])
            return super().apply(objective)

    opt = tz.Optimizer([x], tz.m.NaturalGradient(gn_grad=True, sqrt=True), Spy(0.0))
    f = losses().detach()
    opt.step(lambda backward=True: losses())
    torch.testing.assert_close(seen["g"], G.T @ f)

    z = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([z], tz.m.NaturalGradient(gn_grad=True, sqrt=True), tz.m.LR(0.1))
    opt.step(lambda backward=True: (z ** 2).sum())
    assert torch.isfinite(z).all() and not torch.equal(z.detach(), torch.tensor([1.0, 2.0], dtype=torch.float64))


def test_natural_gradient_fits_least_squares():
    # per-sample residual losses: natural gradient on a small regression converges
    g = torch.Generator().manual_seed(1)
    X = torch.randn(8, 3, generator=g, dtype=torch.float64)
    w_true = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    y = X @ w_true
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([w], tz.m.NaturalGradient(sqrt=True, gn_grad=True), tz.m.LR(0.3))
    for _ in range(60):
        opt.step(lambda backward=True: (X @ w - y).abs())
    assert torch.linalg.vector_norm(w.detach() - w_true) < 0.05


def test_natural_gradient_needs_losses():
    x = torch.zeros(2, requires_grad=True)
    opt = tz.Optimizer([x], tz.m.NaturalGradient())
    x.grad = torch.ones(2)
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()


# -- GGT ----------------------------------------------------------------------------------------------

def _ggt_updates(module, grads):
    """Feeds the given gradients (as .grad, no closure) and returns the updates GGT produced."""
    x = torch.zeros(grads[0].numel(), dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([x], module)
    out = []
    for g in grads:
        x0 = x.detach().clone()
        x.grad = g.clone()
        opt.step()
        out.append(x0 - x.detach())
    return out


def _ggt_expected(window, u, damping=0.0, rdamping=0.0, power=-0.5, eig_tol=1e-7, truncate=None):
    M = torch.stack(window, 1)
    L, V = torch.linalg.eigh(M.T @ M)
    L = L + damping + rdamping * L.max()
    keep = L > eig_tol * L.max()
    L, V = L[keep], V[:, keep]
    if truncate is not None:
        L, V = L[-truncate:], V[:, -truncate:]
    U = M @ V / L.sqrt()
    return U @ (L ** power * (U.T @ u))


_G = [torch.tensor(v, dtype=torch.float64) for v in ([1.0, -2.0, 0.5, 0.3, 0.0], [0.5, 1.0, -1.0, 0.2, 0.1],
                                                     [-0.3, 0.4, 0.9, -1.2, 0.5], [0.2, 0.1, 0.3, 0.7, -0.9])]


def test_ggt_is_full_matrix_adagrad_on_the_window():
    # no damping: the update is (M M^T)^{-1/2} g on the span of the window (pseudo-inverse root)
    ups = _ggt_updates(tz.m.GGT(history_size=2, damping=0.0), _G)
    for k, u in enumerate(ups):
        window = _G[max(0, k - 1):k + 1]
        M = torch.stack(window, 1)
        L, Q = torch.linalg.eigh(M @ M.T)
        keep = L > 1e-9
        expected = Q[:, keep] @ (L[keep].rsqrt() * (Q[:, keep].T @ _G[k]))
        torch.testing.assert_close(u, expected)


@pytest.mark.parametrize("kw", [dict(rdamping=0.5), dict(matrix_power=-1.0), dict(truncate=1), dict(damping=0.3)])
def test_ggt_options(kw):
    ups = _ggt_updates(tz.m.GGT(history_size=3, **{"damping": 0.0, **kw}), _G)
    e = dict(damping=kw.get("damping", 0.0), rdamping=kw.get("rdamping", 0.0), power=kw.get("matrix_power", -0.5),
             truncate=kw.get("truncate"))
    for k, u in enumerate(ups):
        torch.testing.assert_close(u, _ggt_expected(_G[max(0, k - 2):k + 1], _G[k], **e))
    base = _ggt_updates(tz.m.GGT(history_size=3, damping=0.0), _G)
    assert not torch.allclose(ups[-1], base[-1])


def test_ggt_update_freq_keeps_every_gradient():
    ups = _ggt_updates(tz.m.GGT(history_size=10, damping=0.0, update_freq=2), _G)
    # step 1 reuses the basis of step 0; step 2 recomputes it from all three gradients
    torch.testing.assert_close(ups[1], _ggt_expected(_G[:1], _G[1]))
    torch.testing.assert_close(ups[2], _ggt_expected(_G[:3], _G[2]))


def test_ggt_converges_and_errors():
    # normalized (Adagrad-like) steps: the distance to the minimizer drops from ~1.2 to ~1e-3
    traj = _run([tz.m.GGT(history_size=5), tz.m.LR(0.02)], 200)
    assert torch.linalg.vector_norm(traj[-1] - torch.linalg.solve(A, B)) < 5e-3
    with pytest.raises(NotImplementedError):
        tz.m.GGT(basis_optimizer=object())
    with pytest.raises(ValueError, match="history_size"):
        tz.m.GGT(history_size=0)
