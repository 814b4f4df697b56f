"""Line search with ``scipy.optimize.minimize_scalar``."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ...core.objective import Objective
from .line_search import LineSearchBase


class ScipyMinimizeScalar(LineSearchBase):
    """Line search by a scalar minimizer of SciPy (Brent's method, golden section, bounded Brent).

    Minimizes ``phi(a) = f(x - a d)`` with ``scipy.optimize.minimize_scalar`` (Brent, 1973,
    "Algorithms for Minimization without Derivatives"; Virtanen et al., 2020, "SciPy 1.0", Nature
    Methods 17) and uses the minimizer as the step size. ``phi(0)`` is known and costs no
    evaluation. See
    https://docs.scipy.org/doc/scipy/reference/generated/scipy.optimize.minimize_scalar.html.

    Args:
        method: ``"brent"``, ``"golden"`` or ``"bounded"`` (None: SciPy's default).
        maxiter: maximum number of function evaluations per step; when reached, the step size with
            the lowest loss so far is used.
        bracket: ``(xa, xb, xc)`` with ``f(xb) < f(xa), f(xc)``, or ``(xa, xb)`` to start a downhill
            bracket search.
        bounds: ``(lower, upper)``, required by ``method="bounded"``.
        tol: tolerance for termination.
        prev_init: start the bracket search from ``(0, previous step size)``.
        options: solver options passed to SciPy.
    """

    def __init__(self, method: str | None = None, maxiter: int | None = None, bracket=None, bounds=None,
                 tol: float | None = None, prev_init: bool = False, options=None):
        if method is not None and method.lower() not in ("brent", "golden", "bounded"):
            raise ValueError(f"method must be 'brent', 'golden', 'bounded' or None, got {method!r}")
        if method is not None and method.lower() == "bounded" and bounds is None:
            raise ValueError("method='bounded' needs bounds")
        super().__init__(dict(method=method, bracket=_tup(bracket), bounds=_tup(bounds), tol=tol,
                              prev_init=prev_init, options=dict(options) if options is not None else None),
                         maxiter=maxiter)

    def search(self, update: list[torch.Tensor], var: Objective) -> float:
        from scipy.optimize import minimize_scalar
        s = self.settings[var.params[0]]
        self.f_0()
        kwargs: dict[str, Any] = {}
        if s["method"] is not None:
            kwargs["method"] = s["method"]
        bracket = s["bracket"]
        prev = self.global_state.get("step_size")
        if bracket is None and s["prev_init"] and prev is not None and prev > 0:
            bracket = (0.0, prev)
        if bracket is not None:
            kwargs["bracket"] = bracket
        if s["bounds"] is not None:
            kwargs["bounds"] = s["bounds"]
        if s["tol"] is not None:
            kwargs["tol"] = s["tol"]
        if s["options"] is not None:
            kwargs["options"] = s["options"]
        res = minimize_scalar(self.make_objective(var), **kwargs)
        return float(res.x)


def _tup(x: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if x is None else tuple(float(v) for v in x)
