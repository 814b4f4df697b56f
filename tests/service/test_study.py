"""Ask/tell studies, against every deployment."""
from __future__ import annotations

import threading
import time

import pytest
import torch

import torchzero as tz
import tz_client
from tz_client.errors import AlreadyExists, NotFound

from tzsvc_support import assert_same


def wait_info(study, **expected):
    """The study's info once its fields equal ``expected`` (steps finish after the last tell)."""
    deadline = time.monotonic() + 10
    while True:
        info = study.info()
        if all(getattr(info, k) == v for k, v in expected.items()) or time.monotonic() > deadline:
            return info
        time.sleep(0.01)


def quad(x: torch.Tensor) -> torch.Tensor:
    return ((x - 1) ** 2).sum()


def test_ask_tell_matches_local_gradient_run(client, name):
    """A study with a gradient module follows the local trajectory bit for bit."""
    x0 = torch.tensor([0.5, -1.0, 2.0])
    study = client.create_study(name, x0, [tz.m.Adam(), tz.m.LR(0.1)])
    x = x0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], tz.m.Adam(), tz.m.LR(0.1))
    told = []
    for _ in range(5):
        t = study.ask()
        assert t.needs_grad
        assert_same([t.params], [x.detach()])
        xs = t.params.clone().requires_grad_(True)
        loss = quad(xs)
        loss.backward()
        assert study.tell(t, loss.detach(), xs.grad) == (1, 0)
        told.append((float(loss), t.params))
        opt.zero_grad()
        quad(x).backward()
        opt.step()
    params, best = study.best()
    best_loss, best_params = min(told, key=lambda lp: lp[0])
    assert best == best_loss and torch.equal(params, best_params)
    info = wait_info(study, step=5)
    assert info.step == 5 and info.evaluations == 5 and info.kind == "study"


def test_best_list_open_delete(client, name):
    x0 = [torch.zeros(2), torch.ones(3)]
    study = client.create_study(name, x0, [tz.m.Adam(), tz.m.LR(0.5)])
    assert study.best() is None
    losses = []
    for _ in range(4):
        t = study.ask()
        assert isinstance(t.params, list) and [p.shape for p in t.params] == [(2,), (3,)]
        loss = float(sum((p ** 2).sum() for p in t.params))
        losses.append(loss)
        study.tell(t, loss, [2 * p for p in t.params])
    params, best = study.best()
    assert best == min(losses) and isinstance(params, list)
    assert name in [s.name for s in client.list_sessions()]
    again = client.open_study(name)
    assert again.is_list and again.best()[1] == best
    with pytest.raises(AlreadyExists):
        client.create_study(name, x0, [tz.m.Adam()])
    assert client.create_study(name, x0, [tz.m.Adam()], exist_ok=True).name == name
    assert client.delete(name) is True
    assert client.delete(name) is False
    with pytest.raises(NotFound):
        client.open_study(name)


def test_repeated_and_late_tells_are_ignored(client, name):
    study = client.create_study(name, torch.zeros(2), [tz.m.Adam(), tz.m.LR(0.1)])
    t = study.ask()
    assert study.tell(t, 1.0, torch.ones(2)) == (1, 0)
    assert study.tell(t, 5.0, torch.ones(2)) == (0, 1)   # repeated: acknowledged, not applied
    t2 = study.ask()
    assert t2.id == "1:0"
    assert study.tell([t, t2], [3.0, 2.0], [torch.ones(2), torch.ones(2)]) == (1, 1)
    info = wait_info(study, step=2)
    assert info.step == 2 and info.evaluations == 2


def test_unanswered_trials_are_handed_out_again(client, name):
    study = client.create_study(name, torch.zeros(2), [tz.m.Adam(), tz.m.LR(0.1)], ask_timeout=0.3)
    other = tz_client.Client(client.address)
    t = study.ask()
    assert other.open_study(name).ask(n=4, wait=0.0) == []   # held by the first client
    again = other.open_study(name).ask(n=4, wait=5.0)           # after the deadline
    assert [a.id for a in again] == [t.id]
    # the first tell wins, the late one is ignored
    assert study.tell(t, 1.0, torch.ones(2)) == (1, 0)
    assert other.open_study(name).tell(again[0], 2.0, torch.ones(2)) == (0, 1)
    other.close()


def test_released_trials_are_handed_out_at_once(client, name):
    study = client.create_study(name, torch.zeros(2), [tz.m.SPSA(), tz.m.LR(0.1)], seed=0)  # ask_timeout 30 s
    other = tz_client.Client(client.address)
    a, b = study.ask(n=2)
    assert other.open_study(name).ask(n=2, wait=0.0) == []  # both held
    assert study.release([b, "9:9", a.id]) == 2             # (an unknown id is not counted)
    got = other.open_study(name).ask(n=2, wait=0.0)
    assert sorted(t.id for t in got) == sorted([a.id, b.id])
    assert study.release([a]) == 0  # no longer held by this client
    other.close()


def test_optimize_hands_back_the_trials_of_a_failed_evaluation(client, name):
    study = client.create_study(name, torch.zeros(2), [tz.m.SPSA(), tz.m.LR(0.1)], seed=0)  # ask_timeout 30 s
    calls = []

    def f(x: torch.Tensor) -> float:
        calls.append(x)
        if len(calls) == 3:
            raise RuntimeError("objective failed")
        return float(x.sum())
    with pytest.raises(RuntimeError, match="objective failed"):
        study.optimize(f, 10, progress=False, batch=1)
    assert study.info().evaluations == 2
    (t,) = study.ask(n=1, wait=0.0)  # the trial being evaluated: at once, not after 30 s
    assert torch.equal(t.params, calls[2])


def test_reconnecting_client_gets_its_trials_back(client, name):
    a = tz_client.Client(client.address, client_id="worker-7")
    t = a.create_study(name, torch.zeros(2), [tz.m.Adam(), tz.m.LR(0.1)]).ask()
    a.close()
    b = tz_client.Client(client.address, client_id="worker-7")
    assert b.open_study(name).ask().id == t.id
    c = tz_client.Client(client.address, client_id="someone-else")
    assert c.open_study(name).ask(n=1, wait=0.0) == []
    b.close()
    c.close()


def test_bounds_clamp_every_point(client, name):
    study = client.create_study(name, torch.tensor([0.0, 0.0]), [tz.m.Adam(), tz.m.LR(1.0)],
                                lower=torch.tensor([-0.5, -2.0]), upper=0.25)
    for _ in range(6):
        t = study.ask()
        assert bool((t.params >= torch.tensor([-0.5, -2.0])).all()) and bool((t.params <= 0.25).all())
        study.tell(t, float(quad(t.params)), 2 * (t.params - 1))
    assert study.best()[0].tolist() == [0.25, 0.25]


def test_scalar_bounds_and_bad_bounds(client, name):
    study = client.create_study(name, torch.zeros(3), [tz.m.Adam(), tz.m.LR(1.0)], lower=-0.5, upper=0.5)
    for _ in range(3):
        t = study.ask()
        assert bool((t.params.abs() <= 0.5).all())
        study.tell(t, 1.0, -torch.ones(3))
    with pytest.raises(tz_client.InvalidArgument, match="lower"):
        client.create_study(name + "-bad", torch.zeros(3), [tz.m.Adam()], lower=1.0, upper=0.0)


def test_concurrent_clients_on_one_study(client, name, deployment):
    study = client.create_study(name, torch.zeros(3), [tz.m.Adam(), tz.m.LR(0.05)])
    errors = []

    def work(i: int) -> None:
        try:
            c = tz_client.Client(deployment.address)
            s = c.open_study(name)
            for _ in range(10):
                t = s.ask()
                s.tell(t, float(quad(t.params)), 2 * (t.params - 1))
            c.close()
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert study.info().evaluations == 40


def test_optimize_runs_the_loop(client, name):
    study = client.create_study(name, torch.full((4,), 3.0), [tz.m.Adam(), tz.m.LR(0.2)])
    params, loss = study.optimize(quad, 60, progress=False)
    assert loss < 1.0 and study.info().evaluations == 60
    params, loss2 = study.optimize(quad, 20, n_workers=2, progress=False)
    assert loss2 <= loss and study.info().evaluations == 80


class Recorder(tz.core.BatchEvaluator):
    """Evaluates ``quad`` and records every point, as a local reference."""

    def __init__(self):
        self.points = []

    def evaluate_batch(self, points, backward=False):
        from torchzero.core.evaluation import materialize
        xs = [materialize(p)[0] for p in points]
        self.points.append(xs)
        return [tz.core.EvalResult(quad(x)) for x in xs]


def test_optimize_with_a_batch_evaluator(client, name):
    study = client.create_study(name, [torch.full((2,), 2.0), torch.zeros(3)], [tz.m.Adam(), tz.m.LR(0.2)])
    evaluator = tz.ThreadPoolEvaluator(lambda xs: ((xs[0] - 1) ** 2).sum() + (xs[1] ** 2).sum(), max_workers=2)
    params, loss = study.optimize(None, 30, evaluator=evaluator, progress=False)
    assert isinstance(params, list) and loss < 2.0 and study.info().evaluations == 30
    evaluator.close()


@pytest.mark.skipif("SPSA" not in tz.m.implemented(), reason="SPSA not implemented yet")
def test_spsa_study_matches_local_run_with_same_seed(client, name):
    """Zeroth-order: every step's points come as one batch ask; the trajectory equals a local run."""
    x0 = torch.tensor([1.5, -0.5, 0.25, 2.0])
    # the local reference first: an embedded server shares this process's global RNG
    torch.manual_seed(123)
    x = x0.clone().requires_grad_(True)
    local = tz.Optimizer([x], tz.m.SPSA(), tz.m.LR(0.05))
    rec = Recorder()
    for step in range(8):
        local.step(rec)
    study = client.create_study(name, x0, [tz.m.SPSA(), tz.m.LR(0.05)], seed=123)
    for step in range(8):
        trials = study.ask(n=16)
        assert not any(t.needs_grad for t in trials)
        study.tell(trials, [quad(t.params) for t in trials])
        assert [t.id for t in trials] == [f"{step}:{k}" for k in range(len(trials))]
        assert_same([t.params for t in trials], rec.points[step])
    assert wait_info(study, step=8).step == 8


@pytest.mark.skipif("FDM" not in tz.m.implemented(), reason="FDM not implemented yet")
def test_batch_ask_hands_out_every_pending_point(client, name):
    study = client.create_study(name, torch.zeros(5), [tz.m.FDM(), tz.m.LR(0.1)])
    first = study.ask(n=100)
    assert len(first) > 1 and len({t.id for t in first}) == len(first)
    assert study.ask(n=100, wait=0.0) == []   # all handed out
    study.tell(first, [quad(t.params) for t in first])
    assert wait_info(study, step=1).step == 1
