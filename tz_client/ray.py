"""Evaluating batches of points on Ray: :class:`RayEvaluator`.

``RayEvaluator(fn, num_workers=8)`` is a :class:`~torchzero.core.evaluation.BatchEvaluator`:
pass it to a local ``tz.Optimizer`` in place of a closure (``opt.step(evaluator)``), or to
``Study.optimize(fn, n_evals, evaluator=...)``. Each batch fans out over a pool of Ray actors
that hold ``fn``.

Perturbations travel as seeds. The zeroth-order modules (SPSA, RDSA, Gaussian smoothing, MeZO,
randomized finite differences) describe their points as
:class:`~torchzero.core.evaluation.Perturbation` ``(base, seed, scale)``. The evaluator puts
``base`` in the Ray object store once per batch; each worker fetches it once and keeps it, and
every evaluation request then carries only ``(seed, scale, distribution)`` and a reference to
the base: bytes, not megabytes, whatever the size of the model. The worker rebuilds the point
with the same function the optimizer would use (:func:`torchzero.core.directions.make_direction`
on the base's device), so the trajectory is the one of sequential evaluation, bit for bit.

Failures: an evaluation that raises, or whose worker dies (Ray restarts it), is retried up to
``max_retries`` times, then :class:`EvaluationError` is raised with the point's index and the
last error; no result is lost or silently replaced.

Ray is imported when an evaluator is created, not when ``tz_client`` is.
"""
from __future__ import annotations

import itertools
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch

from torchzero.core.evaluation import BatchEvaluator, EvalResult, Perturbation, Point

BASE_CACHE = 4
"""Bases a worker keeps (several studies may share a pool)."""

RESTART_TIMEOUT = 60.0
"""Seconds a dead worker may take to come back before the pool goes on without it."""


class EvaluationError(RuntimeError):
    """An evaluation failed ``max_retries + 1`` times."""


class _BaseRef:
    """A reference to a base point in the object store, wrapped so that Ray does not resolve it
    into the argument (the worker fetches it only when it does not hold it yet)."""

    def __init__(self, key: str, ref: Any):
        self.key = key
        self.ref = ref


def _evaluate(fn: Callable, xs: list[torch.Tensor], backward: bool) -> tuple[Any, list[torch.Tensor] | None]:
    if not backward:
        with torch.no_grad():
            loss = fn(xs)
        return (loss.detach().cpu() if isinstance(loss, torch.Tensor) else loss), None
    xs = [x.detach().requires_grad_(True) for x in xs]
    with torch.enable_grad():
        loss = fn(xs)
        grads = torch.autograd.grad(loss, xs, allow_unused=True)
    grads = [torch.zeros_like(x) if g is None else g.detach() for x, g in zip(xs, grads)]
    return loss.detach().cpu(), [g.cpu() for g in grads]


class EvalWorker:
    """A Ray actor holding ``fn`` and the last few base points it was sent."""

    def __init__(self, fn: Callable, device: str = "cpu", threads: int | None = None):
        if threads:
            torch.set_num_threads(threads)  # reductions split the same way as in the caller
        self.fn = fn
        self.device = torch.device(device)
        self.bases: OrderedDict[str, list[torch.Tensor]] = OrderedDict()
        self.fetches = 0
        self.calls = 0

    def _base(self, b: _BaseRef) -> list[torch.Tensor]:
        base = self.bases.get(b.key)
        if base is None:
            import ray
            base = self.bases[b.key] = ray.get(b.ref)
            self.fetches += 1
            while len(self.bases) > BASE_CACHE:
                self.bases.popitem(last=False)
        else:
            self.bases.move_to_end(b.key)
        return base

    def evaluate(self, request: tuple, backward: bool) -> tuple[Any, list[torch.Tensor] | None]:
        """``request``: ``("point", tensors)`` or ``("perturbation", base_ref, seed, scale, distribution)``."""
        self.calls += 1
        if request[0] == "perturbation":
            _, b, seed, scale, distribution = request
            xs = Perturbation(self._base(b), seed, scale, distribution).materialize()
        else:
            xs = list(request[1])
        if self.device.type != "cpu":
            xs = [x.to(self.device) for x in xs]
        return _evaluate(self.fn, xs, backward)

    def stats(self) -> dict[str, int]:
        return {"fetches": self.fetches, "calls": self.calls}

    def ping(self) -> bool:
        return True


class RayEvaluator(BatchEvaluator):
    """Evaluates ``fn(params) -> loss`` at a batch of points on ``num_workers`` Ray actors.

    Args:
        fn: the objective; receives a list of tensors shaped like the optimizer's parameters (as
            :class:`~torchzero.core.evaluation.FunctionEvaluator`). It is shipped to the workers
            once (by reference when importable, else with cloudpickle).
        num_workers: actors in the pool (each evaluates one point at a time).
        max_retries: attempts after the first before an evaluation is reported as failed.
        num_cpus / num_gpus: Ray resources each worker reserves.
        device: where workers evaluate (``cuda`` with ``num_gpus``); points are built on the device
            of the base point first, so that random directions are those of sequential evaluation.
        threads: torch threads of each worker. By default the caller's count: a large reduction
            (a sum over a million entries) is split by thread, so this is what makes the losses
            equal to the caller's bit for bit. Pass 1 to avoid oversubscribing a machine.
        init: ``ray.init`` keyword arguments used when Ray is not initialised yet.
    """

    def __init__(self, fn: Callable[[list[torch.Tensor]], Any], num_workers: int = 4, *, max_retries: int = 2,
                 num_cpus: float = 1, num_gpus: float = 0, device: str = "cpu", threads: int | None = None,
                 init: dict[str, Any] | None = None):
        import ray
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if not ray.is_initialized():
            ray.init(**(init or {}))
        self.fn = fn
        self.num_workers = int(num_workers)
        self.max_retries = int(max_retries)
        self._ray = ray
        cls = ray.remote(EvalWorker).options(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=-1, max_task_retries=0)
        fn_ref = self._fn_ref = ray.put(fn)  # kept: a restarted worker is built from it again
        threads = threads or torch.get_num_threads()
        self.workers = [cls.remote(fn_ref, device, threads) for _ in range(self.num_workers)]
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]
        self.evaluations = 0
        self.retries = 0

    # -- requests ---------------------------------------------------------------------------------------
    def requests(self, points: Sequence[Point]) -> list[tuple]:
        """What travels to a worker for each point: seeds for perturbations, tensors otherwise."""
        bases: dict[int, _BaseRef] = {}
        out = []
        for pt in points:
            if isinstance(pt, Perturbation):
                b = bases.get(id(pt.base))
                if b is None:
                    base = [t.detach() for t in pt.base]
                    b = bases[id(pt.base)] = _BaseRef(f"{self._prefix}:{next(self._ids)}", self._ray.put(base))
                scale = list(pt.scale) if isinstance(pt.scale, (list, tuple)) else pt.scale
                out.append(("perturbation", b, int(pt.seed), scale, pt.distribution))
            else:
                out.append(("point", [t.detach().cpu() for t in pt]))
        return out

    def evaluate_batch(self, points: Sequence[Point], backward: bool = False) -> list[EvalResult]:
        return [EvalResult(loss, grads) for loss, grads in self.run(self.requests(points), backward)]

    def run(self, requests: list[tuple], backward: bool) -> list[tuple[Any, Any]]:
        """Evaluates ``requests`` on the pool (each worker takes the next one as it finishes).

        A request whose evaluation raised is tried again; one whose worker died goes to another
        worker while Ray restarts the dead one (it rejoins the pool once it answers a ping).
        """
        ray = self._ray
        results: list[Any] = [None] * len(requests)
        attempts = [0] * len(requests)
        todo = list(range(len(requests)))[::-1]
        running: dict[Any, tuple[str, int, int]] = {}  # ref -> (what, request index, worker index)
        idle = list(range(self.num_workers))[::-1]
        down: dict[int, int] = {}  # failed pings per worker
        while todo or any(what == "eval" for what, _, _ in running.values()):
            while todo and idle:
                i, w = todo.pop(), idle.pop()
                running[self.workers[w].evaluate.remote(requests[i], backward)] = ("eval", i, w)
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                what, i, w = running.pop(ref)
                try:
                    value = ray.get(ref)
                except ray.exceptions.RayActorError as e:  # the worker died or is restarting
                    if what == "eval":
                        self._failed(i, attempts, e, running)
                        todo.append(i)
                    else:
                        down[w] = down.get(w, 0) + 1
                        if down[w] * 0.05 > RESTART_TIMEOUT:  # not coming back: leave it out
                            if not idle and not any(x[2] != w for x in running.values()):
                                raise EvaluationError(f"every worker is down ({type(e).__name__}: {e})") from e
                            continue
                        time.sleep(0.05)
                    running[self.workers[w].ping.remote()] = ("ping", -1, w)
                    continue
                except ray.exceptions.RayTaskError as e:  # the objective raised
                    self._failed(i, attempts, e, running)
                    todo.append(i)
                    idle.append(w)
                    continue
                idle.append(w)
                if what == "eval":
                    results[i] = value
        self.evaluations += len(requests)
        return results

    def _failed(self, i: int, attempts: list[int], e: BaseException, running: dict) -> None:
        attempts[i] += 1
        if attempts[i] > self.max_retries:
            for r, (what, _, _) in running.items():
                if what == "eval":
                    try:
                        self._ray.cancel(r)
                    except Exception:
                        pass
            cause = getattr(e, "cause", None) or e
            raise EvaluationError(f"evaluation {i} of the batch failed {attempts[i]} time(s): "
                                  f"{type(cause).__name__}: {cause}") from e
        self.retries += 1

    def stats(self) -> list[dict[str, int]]:
        """Per worker: bases fetched and evaluations made."""
        return self._ray.get([w.stats.remote() for w in self.workers])

    def close(self) -> None:
        """Stops the workers."""
        for w in self.workers:
            try:
                self._ray.kill(w, no_restart=True)
            except Exception:
                pass
        self.workers = []

    def __enter__(self) -> "RayEvaluator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RayEvaluator({getattr(self.fn, '__name__', self.fn)!r}, num_workers={self.num_workers})"
