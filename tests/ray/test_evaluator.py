"""RayEvaluator: same trajectories as sequential evaluation, seeds instead of tensors, retries."""
from __future__ import annotations

import pickle
import threading
import time

import pytest
import torch

import torchzero as tz
from torchzero.core.evaluation import FunctionEvaluator, Perturbation

pytestmark = pytest.mark.ray


def quad(xs):
    return sum(((x - 0.5) ** 2).sum() for x in xs) + 0.1 * xs[0].sum()


@pytest.fixture(scope="module")
def evaluator(ray_session):
    from tz_client.ray import RayEvaluator
    ev = RayEvaluator(quad, num_workers=2)
    yield ev
    ev.close()


def run(modules, closure, steps=4):
    x = [torch.linspace(-1, 1, 50).requires_grad_(True), torch.zeros(3, 2).requires_grad_(True)]
    opt = tz.Optimizer(x, *modules())
    losses = [opt.step(closure) for _ in range(steps)]
    return [p.detach().clone() for p in x], losses


@pytest.mark.parametrize("modules", [
    lambda: [tz.m.SPSA(n_samples=4, seed=3), tz.m.LR(0.01)],
    lambda: [tz.m.RDSA(n_samples=3, seed=5), tz.m.Adam(), tz.m.LR(0.01)],
    lambda: [tz.m.GaussianSmoothing(n_samples=3, seed=1), tz.m.LR(0.01)],
    lambda: [tz.m.Adam(), tz.m.LR(0.01)],  # gradients through autograd on the workers
], ids=["spsa", "rdsa", "gaussian-smoothing", "adam-backward"])
def test_same_trajectory_as_sequential_evaluation(evaluator, modules):
    try:
        modules()
    except NotImplementedError:
        pytest.skip("module not implemented yet")
    want, want_losses = run(modules, FunctionEvaluator(quad))
    got, got_losses = run(modules, evaluator)
    for a, b in zip(want, got):
        assert torch.equal(a, b)
    assert [float(l) for l in want_losses] == [float(l) for l in got_losses]


def test_perturbations_travel_as_seeds(evaluator):
    base = [torch.randn(1_000_000)]  # 4 MB
    points = [Perturbation(base, seed=s, scale=1e-3) for s in range(8)]
    reqs = evaluator.requests(points)
    sizes = [len(pickle.dumps(r[2:])) for r in reqs]  # seed, scale, distribution
    assert max(sizes) < 100
    before = sum(s["fetches"] for s in evaluator.stats())
    res = evaluator.evaluate_batch(points)
    after = sum(s["fetches"] for s in evaluator.stats())
    assert after - before <= evaluator.num_workers  # each worker fetched the base at most once
    want = FunctionEvaluator(quad).evaluate_batch(points)
    assert [float(r.loss) for r in res] == [float(r.loss) for r in want]


class Flaky:
    """Fails the first call in each worker process, then works."""

    def __init__(self):
        self.failed = False

    def __call__(self, xs):
        if not self.failed:
            self.failed = True
            raise RuntimeError("transient")
        return quad(xs)


def always_fails(xs):
    raise ValueError("broken simulator")


def slow_quad(xs):
    time.sleep(0.3)
    return quad(xs)


def test_failed_evaluations_are_retried_then_reported(ray_session):
    from tz_client.ray import EvaluationError, RayEvaluator
    pts = [[torch.full((3,), float(i))] for i in range(4)]
    with RayEvaluator(Flaky(), num_workers=2, max_retries=1) as ev:
        res = ev.evaluate_batch(pts)
        assert [float(r.loss) for r in res] == [float(quad(p)) for p in pts]
        assert ev.retries >= 1
    with RayEvaluator(always_fails, num_workers=1, max_retries=2) as ev:
        with pytest.raises(EvaluationError, match="failed 3 time.*broken simulator"):
            ev.evaluate_batch(pts[:1])


def test_killed_worker_is_restarted_and_its_evaluation_retried(ray_session):
    from tz_client.ray import RayEvaluator
    pts = [[torch.full((3,), float(i))] for i in range(6)]
    with RayEvaluator(slow_quad, num_workers=2, max_retries=2) as ev:
        ev.evaluate_batch(pts[:2])  # workers up
        killer = threading.Timer(0.4, lambda: ray_session.kill(ev.workers[0], no_restart=False))
        killer.start()
        res = ev.evaluate_batch(pts)
        killer.join()
        assert [float(r.loss) for r in res] == [float(quad(p)) for p in pts]
        assert ev.retries >= 1
