"""Restart strategies: when each one restarts, what it restarts, and its options."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz
from torchzero.core.module import Module

from closures import run_trajectory


class Probe(Module):
    """Returns ``factor(k) * g`` (k = steps since its last reset) and records resets."""

    def __init__(self, factor=lambda k: 0.1, extra=None):
        super().__init__()
        self.factor = factor
        self.extra = extra
        self.resets: list[int] = []
        self.calls = 0

    def apply(self, objective):
        k = self.global_state.get("k", 0)
        self.global_state["k"] = k + 1
        self.calls += 1
        g = objective.get_grads()[0]
        u = g * self.factor(k)
        if self.extra is not None:
            u = u + self.extra(k, g)
        objective.set_updates([u])
        return objective

    def reset(self):
        self.resets.append(self.calls)
        super().reset()


def run(mods, steps, x0=(1.0, 0.5, 0.2), closure=True):
    """Minimises ``0.5 |x|^2`` from ``x0``: ``(trajectory, optimizer)``."""
    return run_trajectory(mods, lambda x: 0.5 * (x ** 2).sum(), torch.tensor(x0, dtype=torch.float64), steps, closure)


# ------------------------------------------------------------------ RestartEvery
def test_restart_every_wrapping_resets_before_the_kth_step():
    p = Probe()
    run([tz.m.RestartEvery(p, 3)], 10)
    # resets happen before steps 3, 6, 9 (1-based): after 2, 5, 8 calls
    assert p.resets == [2, 5, 8]


def test_restart_every_none_resets_all_modules_after_the_kth_step():
    a, b = Probe(), Probe()
    run([a, tz.m.RestartEvery(None, 3), b], 7)
    assert a.resets == [3, 6] and b.resets == [3, 6]


def test_restart_every_ndim():
    p = Probe()
    run([tz.m.RestartEvery(p, "ndim")], 7)  # 3 variables
    assert p.resets == [2, 5]


def test_restart_every_bad_steps():
    with pytest.raises(ValueError, match="steps"):
        tz.m.RestartEvery(None, 0)


# ------------------------------------------------------------------ RestartOnStuck
def test_restart_on_stuck_counts_consecutive_stuck_steps():
    # the parameters do not move at all: stuck at every step after the first
    p = Probe(lambda k: 0.0)
    run([tz.m.RestartOnStuck(p, n_tol=2)], 8)
    # step 1 stores x, steps 2, 3 are stuck -> restart before step 3; own state cleared too
    assert p.resets == [2, 5]


def test_restart_on_stuck_tol():
    # steps of 1e-3 relative size count as stuck only with a large enough tol
    p = Probe(lambda k: 1e-3)
    run([tz.m.RestartOnStuck(p, n_tol=1)], 5)
    assert p.resets == []
    p = Probe(lambda k: 1e-3)
    run([tz.m.RestartOnStuck(p, tol=1e-2, n_tol=1)], 5)
    assert p.resets == [1, 3]


def test_restart_on_stuck_resets_the_streak_after_progress():
    # stuck, stuck, move, stuck, stuck...: n_tol=3 never reached
    p = Probe(lambda k: 0.1 if k % 3 == 2 else 0.0)
    run([tz.m.RestartOnStuck(p, n_tol=3)], 12)
    assert p.resets == []


# ------------------------------------------------------------------ PowellRestart
def test_powell_cond1_uses_abs_of_gradient_inner_product():
    # u = c g on 0.5||x||^2: g_{k+1} = (1 - c) g_k, so |g_k.g_{k+1}| / ||g_{k+1}||^2 = 1 / |1 - c|
    for c, expect in [(0.5, True), (1.5, True), (-9.0, False)]:
        p = Probe(lambda k, c=c: c)
        run([tz.m.PowellRestart(p, cond2=None)], 4)
        assert bool(p.resets) == expect, c
        p = Probe(lambda k, c=c: c)
        run([tz.m.PowellRestart(p, cond1=1.0 / abs(1 - c) + 0.01, cond2=None)], 4)
        assert p.resets == []


def test_powell_cond1_alternates_after_restart():
    p = Probe(lambda k: 0.5)
    run([tz.m.PowellRestart(p, cond2=None)], 6)
    # the test cannot run on the step after a restart (no previous gradient)
    assert p.resets == [1, 3, 5]


def _orth_extra(scale):
    # something orthogonal-ish to g added to the direction to move d.g out of the window
    def extra(k, g):
        return g * scale if k >= 1 else torch.zeros_like(g)
    return extra


def test_powell_cond2_restarts_directions_outside_the_window_and_steps_again():
    # the probe's direction after its first step is u = 0.1 g + 0.5 g = 0.6 g: d.g = -0.6||g||^2 is
    # outside [-1.2, -0.8]||g||^2 -> restart, and the fresh probe returns 0.1 g instead
    p = Probe(lambda k: 0.1, extra=_orth_extra(0.5))
    traj, _ = run([tz.m.PowellRestart(p, cond1=None)], 3)
    assert p.resets == [2]
    assert torch.allclose(traj[1], traj[0] * 0.9)
    # inside the window: u = 0.9 g + 0.1 g = g
    p = Probe(lambda k: 0.9, extra=_orth_extra(0.1))
    run([tz.m.PowellRestart(p, cond1=None)], 4)
    assert p.resets == []
    # disabled
    p = Probe(lambda k: 0.1, extra=_orth_extra(0.5))
    run([tz.m.PowellRestart(p, cond1=None, cond2=None)], 4)
    assert p.resets == []


def test_powell_cond2_none_mode_checks_the_update():
    a = Probe(lambda k: 0.3)
    run([a, tz.m.PowellRestart(None, cond1=None)], 4)
    assert a.resets == [2, 4]
    a = Probe(lambda k: 1.1)
    run([a, tz.m.PowellRestart(None, cond1=None)], 4)
    assert a.resets == []


# ------------------------------------------------------------------ BirginMartinezRestart
def test_birgin_martinez_replaces_ascent_by_gradient():
    p = Probe(lambda k: -0.5)
    traj, _ = run([tz.m.BirginMartinezRestart(p)], 2)
    assert p.resets == [1]  # then g = 0 at the minimum: u = 0 is accepted
    assert torch.allclose(traj[0], torch.zeros(3, dtype=torch.float64))


def test_birgin_martinez_cond():
    # u = 0.1 g + 0.5 e (e orthogonal to g): the cosine between u and g is 0.1 / sqrt(0.26) ~ 0.196
    e = torch.tensor([0.5, -1.0, 0.0], dtype=torch.float64)
    e = e / e.norm()

    def extra(k, g):
        return e * g.norm() * 0.5
    p = Probe(lambda k: 0.1, extra=extra)
    traj, _ = run([tz.m.BirginMartinezRestart(p, cond=0.1)], 1)
    assert p.resets == []
    x0 = torch.tensor([1.0, 0.5, 0.2], dtype=torch.float64)
    assert torch.allclose(traj[0], x0 - 0.1 * x0 - e * x0.norm() * 0.5)
    p = Probe(lambda k: 0.1, extra=extra)
    traj, _ = run([tz.m.BirginMartinezRestart(p, cond=0.3)], 1)
    assert p.resets == [1]
    assert torch.allclose(traj[0], torch.zeros(3, dtype=torch.float64))


def test_restarts_work_without_closure():
    a, _ = run([tz.m.PowellRestart(tz.m.FletcherReeves()), tz.m.LR(0.1)], 5)
    b, _ = run([tz.m.PowellRestart(tz.m.FletcherReeves()), tz.m.LR(0.1)], 5, closure=False)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
