"""Server-side objectives: studies evaluated by Ray workers, with no client in the loop.

An operator registers objectives when the server starts
(``tz-server --backend ray --objective sphere=mypkg.objectives:sphere``). A study created with
``objective="sphere"`` (and a budget, ``max_evals``) then steps on its own: every batch of points
its optimizer needs is evaluated by a :class:`~tz_client.ray.RayEvaluator` over the registered
function. Clients only watch it (``info``, ``best``) - they never send code, and a name that was
not registered is refused.

The function receives a list of tensors shaped like the study's ``x0`` and returns the loss.
"""
from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch

from torchzero.core.evaluation import EvalResult, Point, materialize

from ...errors import InvalidArgument
from ...sessions.study import StudySession

log = logging.getLogger("tz_server.ray")

OBJECTIVE = "tz.objective"
MAX_EVALS = "tz.max_evals"
SHARDS = "tz.shards"
"""Reserved ``user_attrs`` keys of CreateSession read by the Ray backend."""

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def parse_objective(text: str) -> tuple[str, str]:
    """``NAME=package.module:function`` -> ``(NAME, "package.module:function")``."""
    name, sep, target = text.partition("=")
    if not sep or not _NAME.match(name) or not _TARGET.match(target):
        raise ValueError(f"--objective {text!r}: expected NAME=package.module:function")
    return name, target


def resolve(target: str) -> Callable[[list[torch.Tensor]], Any]:
    """Imports ``package.module:function``."""
    module, _, attr = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"objective {target!r} cannot be imported: {e}") from None
    if not callable(fn):
        raise ValueError(f"objective {target!r} is not callable")
    return fn


class ObjectiveStudy(StudySession):
    """A study whose evaluations go to Ray workers running a registered objective.

    It steps until its optimizer terminates or ``max_evals`` evaluations are made, then reports
    ``finished``. Asks get no trials; tells are ignored.
    """

    def __init__(self, config: Any, params: list[torch.Tensor], evaluator: Any, max_evals: int, *args: Any, **kw: Any):
        self.evaluator = evaluator
        self.max_evals = int(max_evals)
        super().__init__(config, params, *args, **kw)

    def evaluate_batch(self, points: Sequence[Point], backward: bool = False) -> list[EvalResult]:
        if self.closed:
            from ...errors import SessionClosed
            raise SessionClosed(self.name)
        xs = []
        for pt in points:
            x = [t.detach().clone() for t in materialize(pt)]
            with torch.no_grad():
                self._clamp(x)
            xs.append(x)
        with self.rng.released():
            results = self.evaluator.evaluate_batch(xs, backward)
        with self.cond:
            for x, r in zip(xs, results):
                self.evaluations += 1
                v = float(r.loss)
                if v == v and (self.best is None or v < self.best[0]):
                    self.best = (v, r.loss if isinstance(r.loss, torch.Tensor) else torch.tensor(v), x,
                                 f"{self.book.step}:{self.evaluations - 1}")
            if self.evaluations >= self.max_evals:
                self.finished = True
            self.cond.notify_all()
        return [EvalResult(r.loss, r.grads) for r in results]

    def _run(self) -> None:
        # StudySession's loop, stopping at the budget (checked between steps)
        if self.evaluations >= self.max_evals:
            self.finished = True
        super()._run()


def objective_options(user_attrs: dict[str, Any], objectives: dict[str, str]) -> tuple[str, int] | None:
    """The registered objective and budget a study asks for (None: an ordinary ask/tell study)."""
    name = user_attrs.get(OBJECTIVE)
    if name is None:
        return None
    if not isinstance(name, str) or name not in objectives:
        known = ", ".join(sorted(objectives)) or "none"
        raise InvalidArgument(f"unknown objective {name!r}; this server has: {known}")
    max_evals = user_attrs.get(MAX_EVALS)
    if not isinstance(max_evals, int) or isinstance(max_evals, bool) or max_evals < 1:
        raise InvalidArgument(f"a study with a server-side objective needs max_evals >= 1, got {max_evals!r}")
    return name, max_evals
