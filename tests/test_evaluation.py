"""Batch evaluation: directions from seeds, perturbations, evaluators, and the estimators that use them."""
from __future__ import annotations

import math
import pickle
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import torchzero as tz
from torchzero.core.directions import derive_seed, make_direction
from torchzero.core.evaluation import (FunctionEvaluator, Perturbation, ThreadPoolEvaluator,
                                       evaluate_points, materialize_batch, materialize_stacked)


def _like():
    return [torch.zeros(3, 4, dtype=torch.float64), torch.zeros((), dtype=torch.float64), torch.zeros(7, dtype=torch.float64)]


@pytest.mark.parametrize("dist", ["rademacher", "gaussian", "normal", "uniform", "sphere"])
def test_directions_are_pure_functions_of_the_seed(dist):
    a = make_direction(dist, 123, _like())
    b = make_direction(dist, 123, _like())
    c = make_direction(dist, 124, _like())
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert [x.shape for x in a] == [x.shape for x in _like()]


@pytest.mark.parametrize("dist", ["rademacher", "gaussian", "uniform", "sphere"])
def test_directions_have_zero_mean_and_identity_second_moment(dist):
    like = [torch.zeros(20, dtype=torch.float64)]
    d = torch.stack([make_direction(dist, s, like)[0] for s in range(4000)])
    assert d.mean(0).abs().max() < 0.1
    second = (d.T @ d) / len(d)
    assert torch.allclose(torch.diagonal(second), torch.ones(20, dtype=torch.float64), atol=0.12)
    off = second - torch.diag(torch.diagonal(second))
    assert off.abs().max() < 0.12
    if dist == "sphere":
        assert torch.allclose(d.norm(dim=1), torch.full((4000,), math.sqrt(20), dtype=torch.float64))
    if dist == "rademacher":
        assert set(d.unique().tolist()) == {-1.0, 1.0}
    if dist == "uniform":
        assert d.abs().max() <= math.sqrt(3)


def test_rademacher_signs_do_not_depend_on_dtype_or_thread():
    """The same seed gives the same signs in every dtype, and in any thread (each thread re-seeds
    its own generator)."""
    shapes = [(10,), (3, 4), (), (20000,)]
    ref = make_direction("rademacher", 99, [torch.zeros(s) for s in shapes])
    for dtype in (torch.float64, torch.bfloat16, torch.float16, torch.complex64, torch.int32):
        d = make_direction("rademacher", 99, [torch.zeros(s, dtype=dtype) for s in shapes])
        assert [t.dtype for t in d] == [dtype] * 4
        assert all(torch.equal(a.real.float() if a.is_complex() else a.float(), b) for a, b in zip(d, ref))
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: make_direction("rademacher", 99, [torch.zeros(s) for s in shapes]), range(16)))
    assert all(torch.equal(a, b) for g in got for a, b in zip(g, ref))


def test_basis_direction_spans_all_tensors():
    like = _like()
    n = sum(t.numel() for t in like)
    total = [torch.zeros_like(t) for t in like]
    for i in range(n):
        d = make_direction("basis", i, like)
        assert sum(float(t.sum()) for t in d) == 1.0
        for t, di in zip(total, d):
            t += di
    assert all(bool((t == 1).all()) for t in total)
    with pytest.raises(ValueError, match="basis index"):
        make_direction("basis", n, like)


def test_unknown_distribution_is_rejected():
    with pytest.raises(ValueError, match="distribution"):
        make_direction("cauchy", 0, _like())
    with pytest.raises(ValueError, match="distribution"):
        tz.m.SPSA(distribution="cauchy")


def test_derive_seed_is_deterministic_and_spread():
    seeds = [derive_seed(7, k) for k in range(1000)]
    assert seeds == [derive_seed(7, k) for k in range(1000)]
    assert len(set(seeds)) == 1000
    assert all(0 <= s < 2 ** 63 for s in seeds)
    assert derive_seed(8, 0) != derive_seed(7, 0)


def test_perturbation_materializes_from_scalars_and_pickles_small():
    base = [torch.randn(50, 50, dtype=torch.float64)]
    p = Perturbation(base, seed=5, scale=0.1, distribution="gaussian")
    x = p.materialize()
    assert torch.allclose(x[0], base[0] + 0.1 * make_direction("gaussian", 5, base)[0])
    # per-tensor scales
    base2 = [torch.zeros(3), torch.zeros(2)]
    x2 = Perturbation(base2, 1, [1.0, 0.0], "rademacher").materialize()
    assert x2[0].abs().eq(1).all() and x2[1].eq(0).all()
    # a remote worker holding base only needs (seed, scale, distribution)
    msg = pickle.dumps((p.seed, p.scale, p.distribution))
    assert len(msg) < 100
    assert torch.equal(Perturbation(base, *pickle.loads(msg)).materialize()[0], x[0])


def test_materialize_batch_builds_each_shared_direction_once(monkeypatch):
    base = _like()
    points = [Perturbation(base, 3, 0.1), Perturbation(base, 3, -0.1), [torch.ones(3, 4), torch.ones(()), torch.ones(7)],
              Perturbation(base, 4, 0.1, "gaussian"), Perturbation(base, 4, -0.1, "gaussian")]
    expected = [p.materialize() if isinstance(p, Perturbation) else list(p) for p in points]
    built = count_directions(monkeypatch)
    got = materialize_batch(points)
    assert sorted(built) == [3, 4]
    for g, e in zip(got, expected):
        assert all(torch.equal(a, b) for a, b in zip(g, e))
    assert got[0][0].data_ptr() != got[1][0].data_ptr()  # every point owns its tensors


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("distribution", ["rademacher", "gaussian", "sphere"])
def test_materialize_batch_gives_the_same_values_as_one_by_one(dtype, distribution):
    """The vectorised build of many perturbations of one base matches ``Perturbation.materialize``
    bit for bit (float32 / float64 stacked, other dtypes one by one), whatever the scales."""
    g = torch.Generator().manual_seed(0)
    base = [t.to(dtype) for t in (torch.randn(3, 4, generator=g), torch.randn((), generator=g), torch.randn(7, generator=g))]
    scales = [float(v) * 10.0 ** float(e) for v, e in zip(torch.randn(12, generator=g, dtype=torch.float64),
                                                          torch.randint(-6, 2, (12,), generator=g))]
    points = [Perturbation(base, 100 + i // 2, s, distribution) for i, s in enumerate(scales)]
    points.insert(5, Perturbation(base, 7, [0.5, -1e-3, 2.0], distribution))  # a per-tensor scale: built alone
    got = materialize_batch(points)
    for pt, g_ in zip(points, got):
        e = pt.materialize()
        assert [t.dtype for t in g_] == [dtype] * 3 and [t.shape for t in g_] == [t.shape for t in base]
        assert all(torch.equal(a, b) for a, b in zip(g_, e))
    got[0][0].add_(1)  # the points do not share memory
    assert torch.equal(got[1][0], points[1].materialize()[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_materialize_stacked_is_the_stack_of_materialize_batch(dtype):
    base = [torch.randn(3, 4).to(dtype), torch.randn(()).to(dtype)]
    one_base = [Perturbation(base, 10 + i // 2, 1e-3 * (i + 1) * (-1) ** i) for i in range(8)]
    mixed = one_base[:3] + [[torch.ones(3, 4, dtype=dtype), torch.ones((), dtype=dtype)]] + one_base[3:]
    for points in (one_base, mixed, one_base[:2]):
        got = materialize_stacked(points)
        built = materialize_batch(points)
        assert len(got) == 2
        for j, x in enumerate(got):
            assert x.shape == (len(points), *base[j].shape) and x.dtype == dtype
            assert torch.equal(x, torch.stack([b[j] for b in built]))
    assert materialize_stacked([]) == []
    x = materialize_stacked(mixed)[0]
    x.add_(1)  # new tensors: the points and the base are untouched
    assert torch.equal(mixed[3][0], torch.ones(3, 4, dtype=dtype)) and torch.equal(one_base[0].base[0], base[0])


def count_directions(monkeypatch) -> list[int]:
    """Records the seed of every direction built from now on."""
    from torchzero.core import directions
    built: list[int] = []
    original = directions.make_direction
    monkeypatch.setattr(directions, "make_direction", lambda dist, seed, like: built.append(seed) or original(dist, seed, like))
    return built


def test_a_step_of_rfdm_builds_each_direction_once_with_an_evaluator(monkeypatch):
    """The points of a step share the module's direction cache: the evaluator builds each direction
    once and the gradient estimate reuses it; the cache is not pickled with a point."""
    x = torch.zeros(5, requires_grad=True)
    opt = tz.Optimizer([x], tz.m.RandomizedFDM(n_samples=3, seed=1), tz.m.LR(0.1))
    ev = FunctionEvaluator(lambda xs: ((xs[0] - 1) ** 2).sum())
    built = count_directions(monkeypatch)
    opt.step(ev)
    assert len(built) == 3 and len(set(built)) == 3
    ref = torch.zeros(5, requires_grad=True)
    ref_opt = tz.Optimizer([ref], tz.m.RandomizedFDM(n_samples=3, seed=1), tz.m.LR(0.1))
    ref_opt.step(lambda backward=True: ((ref - 1) ** 2).sum())
    assert torch.equal(x, ref)
    pt = Perturbation([x], 1, 0.1, cache={(id(x), 1, "rademacher"): [x]})
    assert pickle.loads(pickle.dumps(pt)).cache is None


def test_evaluate_points_restores_parameters_and_keeps_order():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    calls = []

    def closure(backward=True):
        loss = (x ** 2).sum()
        calls.append(x.detach().clone())
        if backward:
            x.grad = None
            loss.backward()
        return loss

    base = [x.detach().clone()]
    pts = [[torch.tensor([0.0, 0.0])], Perturbation(base, 0, 1.0, "basis"), [torch.tensor([3.0, 0.0])]]
    res = evaluate_points(closure, [x], pts, backward=True)
    assert [float(r.loss) for r in res] == [0.0, 8.0, 9.0]
    assert torch.equal(res[1].grads[0], torch.tensor([4.0, 4.0]))
    assert torch.equal(x.detach(), torch.tensor([1.0, 2.0]))
    assert len(calls) == 3


def test_thread_pool_runs_in_parallel_and_keeps_order():
    seen = set()

    def fn(xs):
        seen.add(threading.get_ident())
        time.sleep(0.02)
        return xs[0].sum()

    pool = ThreadPoolEvaluator(fn, max_workers=4)
    try:
        pts = [[torch.tensor([float(i)])] for i in range(8)]
        t0 = time.perf_counter()
        res = pool.evaluate_batch(pts)
        dt = time.perf_counter() - t0
        assert [float(r.loss) for r in res] == [float(i) for i in range(8)]
        assert len(seen) > 1
        del dt  # wall-clock times are not asserted (shared CPUs)
        g = pool.evaluate_batch([[torch.tensor([1.0, 2.0])]], backward=True)[0]
        assert torch.equal(g.grads[0], torch.ones(2))
        copy = pickle.loads(pickle.dumps(ThreadPoolEvaluator(_quadratic_fn, max_workers=4)))
        assert copy.max_workers == 4 and copy._pool is None
    finally:
        pool.close()


def _quadratic_fn(xs):
    x = xs[0]
    w = torch.arange(1, x.numel() + 1, dtype=x.dtype)
    return (w * (x - 0.5) ** 2).sum()


MODULES = {
    "SPSA": lambda: [tz.m.SPSA(h=1e-3, n_samples=3, seed=1), tz.m.LR(1e-2)],
    "RDSA": lambda: [tz.m.RDSA(h=1e-3, n_samples=2, seed=2), tz.m.LR(1e-2)],
    "GaussianSmoothing": lambda: [tz.m.GaussianSmoothing(n_samples=5, seed=3), tz.m.LR(1e-2)],
    "RandomizedFDM-forward4-sphere": lambda: [tz.m.RandomizedFDM(h=1e-2, formula="forward4", distribution="sphere", seed=4), tz.m.LR(1e-2)],
    "SPSA1": lambda: [tz.m.SPSA1(h=0.1, n_samples=2, seed=5), tz.m.LR(1e-4)],
    "FDM": lambda: [tz.m.FDM(h=1e-3, formula="central4"), tz.m.LR(1e-2)],
    "CD": lambda: [tz.m.CD(h=1e-2, grad=True), tz.m.LR(1e-2)],
    "GradientSampling": lambda: [tz.m.GradientSampling([tz.m.LR(1e-2)], sigma=0.05, n=4, seed=6)],
    "ForwardGradient": lambda: [tz.m.ForwardGradient(n_samples=2, seed=7), tz.m.LR(1e-2)],
    "SAM": lambda: [tz.m.SAM(rho=0.1), tz.m.LR(1e-2)],
    "SVRG": lambda: [tz.m.SVRG(3, accum_steps=1), tz.m.LR(1e-2)],
    "PerturbWeights": lambda: [tz.m.PerturbWeights(0.01), tz.m.LR(1e-2)],
    "SqrtHomotopy": lambda: [tz.m.SqrtHomotopy(), tz.m.LR(1e-2)],
}


def _run(build, mode: str, steps: int = 6):
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 7, dtype=torch.float64).requires_grad_(True)
    opt = tz.Optimizer([x], *build())
    if mode == "closure":
        def closure(backward=True):
            loss = _quadratic_fn([x])
            if backward:
                opt.zero_grad()
                loss.backward()
            return loss
        ev = closure
    elif mode == "plain":
        def plain():
            opt.zero_grad()
            loss = _quadratic_fn([x])
            loss.backward()
            return loss
        ev = plain
    elif mode == "function":
        ev = FunctionEvaluator(_quadratic_fn)
    else:
        ev = ThreadPoolEvaluator(_quadratic_fn, max_workers=3)
    traj = []
    for i in range(steps):
        torch.manual_seed(100 + i)
        opt.step(ev)
        traj.append(x.detach().clone())
    if isinstance(ev, ThreadPoolEvaluator):
        ev.close()
    return traj, opt.num_evaluations


@pytest.mark.parametrize("name", sorted(MODULES))
def test_same_trajectory_and_counts_sequential_plain_threads(name):
    ref, n_ref = _run(MODULES[name], "closure")
    for mode in ("plain", "function", "threads"):
        traj, n = _run(MODULES[name], mode)
        assert n == n_ref, f"{name}/{mode}: {n} evaluations vs {n_ref}"
        for i, (a, b) in enumerate(zip(ref, traj)):
            assert torch.allclose(a, b, rtol=0, atol=1e-12), f"{name}/{mode} differs at step {i}"


class _CountingEvaluator(FunctionEvaluator):
    def __init__(self, fn):
        super().__init__(fn)
        self.batches: list[int] = []

    def evaluate_batch(self, points, backward=False):
        self.batches.append(len(points))
        return super().evaluate_batch(points, backward)


@pytest.mark.parametrize("build, per_step", [
    (lambda: [tz.m.SPSA(n_samples=4), tz.m.LR(1e-3)], [8]),
    (lambda: [tz.m.GaussianSmoothing(n_samples=6), tz.m.LR(1e-3)], [7]),
    (lambda: [tz.m.FDM(), tz.m.LR(1e-3)], [14]),
    (lambda: [tz.m.FDM(formula="forward3"), tz.m.LR(1e-3)], [15]),
    (lambda: [tz.m.RandomizedFDM(n_samples=2, formula="central4"), tz.m.LR(1e-3)], [8]),
    (lambda: [tz.m.CD(), tz.m.LR(1e-3)], [3]),
    (lambda: [tz.m.GradientSampling(n=5, sigma=0.1), tz.m.LR(1e-3)], [6]),
])
def test_one_batch_per_step_with_exact_counts(build, per_step):
    ev = _CountingEvaluator(_quadratic_fn)
    x = torch.linspace(-1, 1, 7, dtype=torch.float64).requires_grad_(True)
    opt = tz.Optimizer([x], *build())
    for _ in range(3):
        opt.step(ev)
    assert ev.batches == per_step * 3
    assert opt.num_evaluations == sum(ev.batches)


def test_return_approx_loss_saves_the_unperturbed_evaluation():
    ev = _CountingEvaluator(_quadratic_fn)
    x = torch.linspace(-1, 1, 7, dtype=torch.float64).requires_grad_(True)
    # a later module that needs the loss: with return_approx_loss no extra evaluation is spent
    opt = tz.Optimizer([x], tz.m.SPSA(return_approx_loss=True), tz.m.LR(1e-3))
    loss = opt.step(ev)
    assert opt.num_evaluations == 2 and loss is not None
