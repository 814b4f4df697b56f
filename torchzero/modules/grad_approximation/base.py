"""The :class:`GradApproximator` base class and the seed bookkeeping shared by estimators."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import torch

from ...core.directions import derive_seed
from ...core.evaluation import EvalResult, Point, evaluate_points
from ...core.module import Module
from ...core.objective import Objective

Target = Literal["update", "grad", "closure"]
_TARGETS = ("update", "grad", "closure")


def draw_seeds(module: Module, n: int, seed: int | torch.Generator | None) -> list[int]:
    """``n`` per-perturbation seeds.

    * ``seed`` an int: ``derive_seed(seed, k)`` for a counter ``k`` kept in ``module.global_state``
      (plain state: it survives ``state_dict`` and restarts on ``reset``);
    * ``seed`` a ``torch.Generator``: drawn from it;
    * ``seed`` None: drawn from the global torch RNG (``torch.manual_seed`` makes runs repeatable).
    """
    if n <= 0:
        return []
    if seed is None or isinstance(seed, torch.Generator):
        return torch.randint(0, 2 ** 62, (n,), generator=seed, dtype=torch.int64).tolist()
    k = module.global_state.get("__seed_counter", 0)
    module.global_state["__seed_counter"] = k + n
    return [derive_seed(int(seed), k + i) for i in range(n)]


def check_seed(seed: Any) -> Any:
    if seed is not None and not isinstance(seed, (int, torch.Generator)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, a torch.Generator or None, got {type(seed).__name__}")
    return seed


def as_float(loss: Any) -> Any:
    """The loss without its graph (a tensor stays a tensor)."""
    return loss.detach() if isinstance(loss, torch.Tensor) else loss


class GradApproximator(Module, ABC):
    """Base class of gradient approximations.

    A subclass implements :meth:`approximate`, which returns ``(grads, loss, loss_approx)``:
    the estimated gradient at the current parameters, the loss there (None when the estimator
    did not evaluate the unperturbed point) and a loss at a nearby point. Estimators gather all
    the points they need and evaluate them in one batch with
    :func:`~torchzero.core.evaluation.evaluate_points` (see :meth:`evaluate`), so an evaluator
    can run them in parallel.

    Args:
        defaults: default settings.
        return_approx_loss: when the loss at the current point was not evaluated, report the
            nearby loss instead of spending one more evaluation on it.
        target: where the estimate goes:

            * ``"closure"`` (default): the gradients, and the closure seen by later modules is
              replaced by one that returns the estimated gradients in ``p.grad`` (so a line
              search or trust region re-estimates them at each point it tries);
            * ``"grad"``: the gradients only (later closure calls give true gradients);
            * ``"update"``: the update only.
    """

    def __init__(self, defaults: dict[str, Any] | None = None, return_approx_loss: bool = False, target: Target = "closure"):
        super().__init__(defaults)
        if target not in _TARGETS:
            raise ValueError(f"target must be one of {_TARGETS}, got {target!r}")
        self._return_approx_loss = bool(return_approx_loss)
        self._target = target

    # -- to implement ------------------------------------------------------------
    def pre_step(self, objective: Objective) -> None:
        """Runs once per step, before any approximation (e.g. to draw the step's perturbations).

        :meth:`approximate` may run several times in a step when later modules call the
        modified closure at other points.
        """

    @abstractmethod
    def approximate(self, closure: Callable, params: list[torch.Tensor], loss: Any) -> tuple[Iterable[torch.Tensor], Any, Any]:
        """Returns ``(grads, loss, loss_approx)`` at the current ``params``, leaving them unchanged.

        ``loss`` is the loss at the current parameters when it is already known, else None.
        """

    # -- helpers -------------------------------------------------------------------
    @staticmethod
    def evaluate(closure: Callable, params: Sequence[torch.Tensor], points: Sequence[Point],
                 directions: dict | None = None) -> list[Any]:
        """Losses at ``points`` (one batch), without gradients (``directions``: see
        :func:`~torchzero.core.evaluation.evaluate_points`)."""
        return [as_float(r.loss) for r in evaluate_points(closure, params, points, backward=False, directions=directions)]

    def needs_loss(self) -> bool:
        """Whether the modified closure must report the true loss (evaluating it if needed)."""
        return not self._return_approx_loss

    def approximate_with_loss(self, closure: Callable, params: list[torch.Tensor], loss: Any,
                              want_loss: bool) -> tuple[list[torch.Tensor], Any, Any]:
        """:meth:`approximate`, making sure the true loss is known when ``want_loss``.

        Subclasses that can add the unperturbed point to their batch override
        :meth:`approximate_at` instead; this fallback evaluates it separately.
        """
        grads, loss2, loss_approx = self.approximate_at(closure, params, loss, want_loss)
        grads = list(grads)
        if loss2 is None:
            loss2 = loss
        if want_loss and loss2 is None:
            loss2 = as_float(closure(False))
        return grads, loss2, loss_approx

    def approximate_at(self, closure: Callable, params: list[torch.Tensor], loss: Any,
                       want_loss: bool) -> tuple[Iterable[torch.Tensor], Any, Any]:
        """Like :meth:`approximate`; ``want_loss`` asks to include the unperturbed point in the batch."""
        return self.approximate(closure, params, loss)

    # -- stepping ------------------------------------------------------------------
    def update(self, objective: Objective) -> None:
        self.pre_step(objective)

    def apply(self, objective: Objective) -> Objective:
        closure = objective.closure
        if closure is None:
            raise RuntimeError(f"{type(self).__name__} is a gradient-free estimator and needs a closure; "
                               "pass one to optimizer.step(closure)")
        params = objective.params
        grads, loss, loss_approx = self.approximate_with_loss(closure, params, objective.loss, want_loss=False)
        if loss is not None:
            objective.loss = loss
            objective.loss_approx = loss
        else:
            objective.loss_approx = loss_approx
            if self._return_approx_loss:
                objective.loss = loss_approx
        if self._target == "update":
            objective.set_updates(grads, owned=True)
            return objective
        objective.grads = grads
        objective.set_updates(grads, owned=False)
        if self._target == "closure":
            objective.closure = ApproximatedClosure(self, closure, params)
        return objective


class ApproximatedClosure:
    """The closure a :class:`GradApproximator` hands to later modules.

    ``closure(True)`` estimates the gradient at the current parameters, writes it into
    ``p.grad`` and returns the loss (the nearby loss with ``return_approx_loss``);
    ``closure(False)`` evaluates the original closure. Batches without gradients go straight to
    the original closure's evaluator when it has one.
    """

    def __init__(self, approximator: GradApproximator, closure: Callable, params: Sequence[torch.Tensor]):
        self.approximator = approximator
        self.closure = closure
        self.params = list(params)
        if hasattr(closure, "evaluate_batch"):
            self.evaluate_batch = self._evaluate_batch

    def __call__(self, backward: bool = True) -> Any:
        if not backward:
            return self.closure(False)
        a = self.approximator
        grads, loss, loss_approx = a.approximate_with_loss(self.closure, self.params, None, want_loss=a.needs_loss())
        for p, g in zip(self.params, grads):
            p.grad = g
        return loss if loss is not None else loss_approx

    def _evaluate_batch(self, points: Sequence[Point], backward: bool = False) -> list[EvalResult]:
        if not backward:
            return self.closure.evaluate_batch(points, False)
        out = []
        saved = [p.detach().clone() for p in self.params]
        from ...core.evaluation import materialize
        try:
            for point in points:
                with torch.no_grad():
                    for p, x in zip(self.params, materialize(point)):
                        p.copy_(x)
                loss = self(True)
                out.append(EvalResult(loss, [p.grad for p in self.params]))
        finally:
            with torch.no_grad():
                for p, s in zip(self.params, saved):
                    p.copy_(s)
        return out
