"""Batch evaluation: objectives that can evaluate several points at once.

Modules that need independent evaluations (finite differences, SPSA, random smoothing, gradient
sampling...) gather every point of a step and hand them over in one call to
:meth:`torchzero.core.objective.Objective.evaluate_batch`. What happens then depends on the
closure the user passed to ``Optimizer.step``:

* a plain closure evaluates the points one by one, writing each point into the parameters;
* a :class:`BatchEvaluator` (e.g. :class:`FunctionEvaluator`, :class:`ThreadPoolEvaluator`, the Ray
  and ask/tell evaluators of ``tz_client``) evaluates the whole batch however it likes.

Either way the results come back in order, so the trajectory does not depend on the evaluator.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class EvalResult:
    """The loss (and, when asked for, the gradient) at one point."""

    loss: Any
    grads: list[torch.Tensor] | None = None


@dataclass
class Perturbation:
    """A point described as ``base + scale * direction`` without materialising the direction.

    ``direction`` is ``make_direction(distribution, seed, base)``
    (:func:`torchzero.core.directions.make_direction`), a deterministic function of a seed, so a
    remote worker that already holds ``base`` can rebuild the point from a few scalars.
    ``scale`` is one number, or one number per tensor of ``base`` (per-parameter step sizes).
    """

    base: list[torch.Tensor]
    seed: int
    scale: float | list[float]
    distribution: str = "rademacher"
    cache: dict | None = field(default=None, compare=False, repr=False)
    """Directions already built, by :meth:`cache_key`, shared by the points of one step (the module
    that made the points reads them back instead of rebuilding them; never sent anywhere)."""

    def direction(self, cache: dict | None = None) -> list[torch.Tensor]:
        """The unscaled direction (rebuilt from the seed, or taken from ``self.cache`` / ``cache``
        where it was built before; do not modify it)."""
        cache = self.cache if self.cache is not None else cache
        if cache is None:
            from .directions import make_direction
            return make_direction(self.distribution, self.seed, self.base)
        key = self.cache_key()
        d = cache.get(key)
        if d is None:
            from .directions import make_direction
            d = cache[key] = make_direction(self.distribution, self.seed, self.base)
        return d

    def cache_key(self) -> tuple:
        """Identifies the direction (not the scale): points ``base +- h d`` share it."""
        return (id(self.base), self.seed, self.distribution)

    def materialize(self, direction: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """``base + scale * direction`` as new tensors (``direction`` if given, else :meth:`direction`)."""
        d = self.direction() if direction is None else direction
        scale = self.scale
        if isinstance(scale, (list, tuple)):
            return [torch.mul(di, s).add_(b) for b, di, s in zip(self.base, d, scale)]
        return [torch.mul(di, scale).add_(b) for b, di in zip(self.base, d)]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "cache": None}


Point = Sequence[torch.Tensor] | Perturbation


def materialize(point: Point) -> list[torch.Tensor]:
    return point.materialize() if isinstance(point, Perturbation) else list(point)


def materialize_batch(points: Sequence[Point]) -> list[list[torch.Tensor]]:
    """Every point as tensors; perturbations that share a direction (``base + h d`` and
    ``base - h d``) build it once.

    Perturbations of one ``base`` with a single scale each are built together: per tensor of the
    base, ``stack(d_i) * scale_i + base`` in two vectorised operations instead of two per point.
    The values are the same as :meth:`Perturbation.materialize`'s (the same float32 / float64
    products and sums; other dtypes, whose scalar products are computed in a wider type, are built
    one by one). The tensors of such points are rows of one new tensor per base tensor.
    """
    local: dict[tuple, list[torch.Tensor]] = {}
    out: list[list[torch.Tensor] | None] = [None] * len(points)
    groups: dict[int, list[int]] = {}
    for i, pt in enumerate(points):
        if not isinstance(pt, Perturbation):
            out[i] = list(pt)
        elif _stackable(pt):
            groups.setdefault(id(pt.base), []).append(i)
        else:
            out[i] = pt.materialize(pt.direction(local))
    for idx in groups.values():
        if len(idx) < _STACK_FROM:
            for i in idx:
                out[i] = points[i].materialize(points[i].direction(local))  # type: ignore[union-attr]
            continue
        rows = [x.unbind(0) for x in _stack_group([points[i] for i in idx], local)]  # type: ignore[misc]
        for k, i in enumerate(idx):
            out[i] = [r[k] for r in rows]
    return out  # type: ignore[return-value]


def materialize_stacked(points: Sequence[Point]) -> list[torch.Tensor]:
    """Per tensor of the points, the values of every point stacked into one new tensor
    (``[len(points), *shape]``): the same values as :func:`materialize_batch`, without building
    and re-stacking rows when the points are perturbations of one base."""
    first = points[0] if points else None
    if (isinstance(first, Perturbation) and len(points) >= _STACK_FROM
            and all(isinstance(p, Perturbation) and p.base is first.base and _stackable(p) for p in points)):
        return _stack_group(points, {})  # type: ignore[arg-type]
    built = materialize_batch(points)
    return [torch.stack([b[j].detach() for b in built]) for j in range(len(built[0]))] if built else []


def _stack_group(perts: Sequence[Perturbation], local: dict) -> list[torch.Tensor]:
    """``stack(d_i) * scale_i + base`` per tensor of the shared base (new tensors)."""
    directions = [p.direction(local) for p in perts]
    out = []
    for j, b in enumerate(perts[0].base):
        scales = torch.tensor([p.scale for p in perts], dtype=b.dtype, device=b.device)
        out.append(torch.stack([d[j] for d in directions]).mul_(scales.view(-1, *([1] * b.dim()))).add_(b))
    return out


_STACK_FROM = 4
"""Perturbations of one base built together from this many on (fewer are cheaper one by one)."""


def _stackable(pt: Perturbation) -> bool:
    return (not isinstance(pt.scale, (list, tuple)) and bool(pt.base)
            and all(b.dtype in (torch.float32, torch.float64) for b in pt.base))


class BatchEvaluator(ABC):
    """An objective that evaluates many points in one call.

    Subclasses implement :meth:`evaluate_batch`. An evaluator can be passed to
    ``Optimizer.step`` in place of a closure.
    """

    @abstractmethod
    def evaluate_batch(self, points: Sequence[Point], backward: bool = False) -> list[EvalResult]:
        """Evaluates the objective at each point (a list of tensors shaped like the parameters)."""


class FunctionEvaluator(BatchEvaluator):
    """Evaluates ``fn(params) -> loss`` at each point, one after another.

    ``fn`` receives a list of tensors shaped like the optimizer's parameters. Gradients, when
    asked for, come from autograd through ``fn``.
    """

    def __init__(self, fn: Callable[[list[torch.Tensor]], Any]):
        self.fn = fn

    def evaluate_one(self, point: Point, backward: bool) -> EvalResult:
        xs = materialize(point)
        if not backward:
            with torch.no_grad():
                return EvalResult(self.fn(xs))
        xs = [x.detach().requires_grad_(True) for x in xs]
        with torch.enable_grad():
            loss = self.fn(xs)
            grads = torch.autograd.grad(loss, xs, allow_unused=True)
        grads = [torch.zeros_like(x) if g is None else g for x, g in zip(xs, grads)]
        return EvalResult(loss.detach(), grads)

    def evaluate_batch(self, points: Sequence[Point], backward: bool = False) -> list[EvalResult]:
        return [self.evaluate_one(p, backward) for p in points]


class ThreadPoolEvaluator(FunctionEvaluator):
    """Evaluates a batch of points on a thread pool.

    Useful when ``fn`` releases the GIL (large tensor ops) or waits (I/O, a simulator, a remote
    service). Results come back in the order of the points.
    """

    def __init__(self, fn: Callable[[list[torch.Tensor]], Any], max_workers: int = 4):
        super().__init__(fn)
        self.max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None

    def evaluate_batch(self, points: Sequence[Point], backward: bool = False) -> list[EvalResult]:
        if len(points) <= 1:
            return super().evaluate_batch(points, backward)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="tz-eval")
        return list(self._pool.map(lambda p: self.evaluate_one(p, backward), points))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __getstate__(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["_pool"] = None
        return d


class BoundEvaluator:
    """A :class:`BatchEvaluator` seen as an ordinary ``closure(backward)`` over ``params``.

    Evaluates at the current values of ``params`` and, with ``backward``, writes ``p.grad``.
    """

    def __init__(self, evaluator: BatchEvaluator, params: Sequence[torch.Tensor]):
        self.evaluator = evaluator
        self.params = params

    def evaluate_batch(self, points: Sequence[Point], backward: bool = False) -> list[EvalResult]:
        return self.evaluator.evaluate_batch(points, backward)

    def __call__(self, backward: bool = True) -> Any:
        point = [p.detach().clone() for p in self.params]
        res = self.evaluator.evaluate_batch([point], backward)[0]
        if backward:
            if res.grads is None:
                raise RuntimeError(f"{type(self.evaluator).__name__} returned no gradient for backward=True")
            for p, g in zip(self.params, res.grads):
                p.grad = g.to(device=p.device, dtype=p.dtype)
        return res.loss


def evaluate_points(closure: Callable, params: Sequence[torch.Tensor], points: Sequence[Point],
                    backward: bool = False, directions: dict | None = None) -> list[EvalResult]:
    """Evaluates ``closure`` at several points in one batch; the parameters are left as they were.

    A closure with an ``evaluate_batch`` method (an evaluator) gets the whole batch at once;
    a plain ``closure(backward)`` is called once per point with the point written into
    ``params``. Results come back in the order of ``points``. This is what
    :meth:`torchzero.core.objective.Objective.evaluate_batch` does, for code that holds a closure
    rather than an objective (e.g. a gradient approximator called again by a line search).

    ``directions``, when given, caches the directions of :class:`Perturbation` points that are
    built here (keyed by :meth:`Perturbation.cache_key`), so that points sharing a direction
    build it once and the caller can reuse them; evaluators build their own.
    """
    if not points:
        return []
    if closure is None:
        raise RuntimeError("this module needs a closure; pass one to optimizer.step(closure)")
    if hasattr(closure, "evaluate_batch"):
        results = list(closure.evaluate_batch(points, backward))
        if len(results) != len(points):
            raise RuntimeError(f"evaluator returned {len(results)} results for {len(points)} points")
        return results
    results = []
    saved = [p.detach().clone() for p in params]
    try:
        for point in points:
            with torch.no_grad():
                if isinstance(point, Perturbation):
                    x = point.materialize(point.direction(directions))
                else:
                    x = list(point)
                for p, xi in zip(params, x):
                    p.copy_(xi)
            if backward:
                with torch.enable_grad():
                    loss = closure(True)
                grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]
                results.append(EvalResult(_detach(loss), grads))
            else:
                with torch.no_grad():
                    loss = closure(False)
                results.append(EvalResult(_detach(loss)))
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)
    return results


def _detach(loss: Any) -> Any:
    return loss.detach() if isinstance(loss, torch.Tensor) else loss
