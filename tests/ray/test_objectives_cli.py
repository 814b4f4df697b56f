"""Server-side objectives (studies with no client in the loop), Study.optimize with a RayEvaluator,
and the ``tz-server --backend ray`` command joining an existing Ray cluster."""
from __future__ import annotations

import time

import pytest
import torch

import torchzero as tz
import tz_client
from torchzero.core.evaluation import FunctionEvaluator
from tz_server.backends.ray.examples import sphere

from ray_support import gcs_address
from tzsvc_support import ServerProcess

pytestmark = pytest.mark.ray


def wait_finished(study, timeout=120.0):
    deadline = time.monotonic() + timeout
    while True:
        info = study.info()
        if info.state != "running" or time.monotonic() > deadline:
            return info
        time.sleep(0.1)


def local_best(x0, modules, steps):
    """Best loss over every evaluation of a local run evaluating the same objective."""
    seen = []

    class Recording(FunctionEvaluator):
        def evaluate_batch(self, points, backward=False):
            res = super().evaluate_batch(points, backward)
            seen.extend(float(r.loss) for r in res)
            return res

    x = x0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], *modules())
    for _ in range(steps):
        opt.step(Recording(sphere))
    return min(seen), len(seen)


def test_study_with_a_server_side_objective_runs_without_clients(ray_server):
    modules = lambda: [tz.m.SPSA(n_samples=2, seed=7), tz.m.LR(0.05)]  # noqa: E731
    x0 = torch.linspace(-1, 1, 6)
    with tz_client.Client(ray_server.address) as c:
        study = c.create_study("objective-study", x0, modules(), objective="sphere", max_evals=40)
        info = wait_finished(study)
        assert info.state == "finished"
        assert info.evaluations == 40  # 4 evaluations per step, 10 steps
        params, loss = study.best()
        # the same evaluations as a local run: the same best loss
        want, n = local_best(x0, modules, 10)
        assert n == 40 and loss == want
        assert float(sphere([params])) == loss
        with pytest.raises(tz_client.InvalidArgument, match="unknown objective 'nope'.*sphere"):
            c.create_study("bad-objective", x0, modules(), objective="nope", max_evals=5)
        assert c.delete("objective-study")


def test_study_optimize_with_a_ray_evaluator(ray_server, ray_session):
    from tz_client.ray import RayEvaluator
    x0 = torch.linspace(-1, 1, 4)
    with tz_client.Client(ray_server.address) as c, RayEvaluator(sphere, num_workers=2) as ev:
        study = c.create_study("ray-evaluated", x0, [tz.m.SPSA(n_samples=3, seed=1), tz.m.LR(0.05)])
        params, loss = study.optimize(None, 60, evaluator=ev, progress=False)
        assert ev.evaluations == 60
        assert loss < float(sphere([x0]))
        assert c.delete("ray-evaluated")


def test_tz_server_command_joins_a_running_ray(ray_session):
    proc = ServerProcess("--backend", "ray", "--ray-address", gcs_address(), "--shards", "2",
                         "--objective", "sphere=tz_server.backends.ray.examples:sphere", "--eval-workers", "1",
                         "--log-level", "warning", timeout=120)
    try:
        p = torch.nn.Parameter(torch.arange(6.0))
        opt = tz_client.RemoteOptimizer([p, torch.nn.Parameter(torch.ones(3))], tz.m.Adam(), tz.m.LR(0.1),
                                        address=proc.address)
        q = torch.nn.Parameter(torch.arange(6.0))
        local = tz.Optimizer([q, torch.nn.Parameter(torch.ones(3))], tz.m.Adam(), tz.m.LR(0.1))
        for _ in range(2):
            p.grad = torch.ones(6)
            q.grad = torch.ones(6)
            opt.step()
            local.step()
        assert torch.equal(p.detach(), q.detach())
        assert opt.delete_session()
        with tz_client.Client(proc.address) as c:
            study = c.create_study("cli-objective", torch.zeros(3), [tz.m.SPSA(seed=0), tz.m.LR(0.1)],
                                   objective="sphere", max_evals=6)
            assert wait_finished(study).evaluations == 6
    finally:
        proc.stop()
