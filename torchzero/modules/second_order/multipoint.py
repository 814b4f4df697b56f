"""Multipoint Newton-type methods: several gradient / Hessian evaluations per step.

Each method is a root finder for ``F(x) = grad f(x) = 0`` with ``F'(x)`` the Hessian. One step
starts at ``x``, evaluates ``F`` and ``F'`` at intermediate points, and the update is
``x - x_new`` (so that, followed by nothing, the parameters become ``x_new``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from ...core.objective import Objective
from ...core.transform import Transform
from ...utils.params import tensors_to_vec, vec_to_tensors
from ._linalg import solve

DerivativesMethod = Literal["autograd", "batched_autograd", "thoad"]


class HigherOrderMethodBase(Transform):
    """Base of the multipoint methods: subclasses implement :meth:`next_point`.

    Args:
        lstsq: solve the linear systems by least squares.
        derivatives_method: ``batched_autograd`` or ``autograd`` (exact Hessians).
    """

    def __init__(self, lstsq: bool = False, derivatives_method: DerivativesMethod = "batched_autograd"):
        super().__init__(dict(lstsq=lstsq, derivatives_method=derivatives_method))

    def next_point(self, x: torch.Tensor, evaluate, solve) -> torch.Tensor:
        """The new point from ``x``. ``evaluate(p)`` returns ``(F(p), F'(p))`` and
        ``solve(J, v)`` returns ``J^-1 v``."""
        raise NotImplementedError

    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        s = settings[0]
        method = s["derivatives_method"]
        if method == "thoad":
            raise ValueError("derivatives_method='thoad' needs the thoad library, which torchzero does not use")
        if method not in ("autograd", "batched_autograd"):
            raise ValueError(f"unknown derivatives_method {method!r}")
        params = objective.params
        x0 = tensors_to_vec([p.detach() for p in params])
        first = [True]

        def evaluate(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            at_x0 = first[0]
            first[0] = False
            if not at_x0:
                with torch.no_grad():
                    for p, c in zip(params, vec_to_tensors(x, params)):
                        p.copy_(c)
            _, g, H = objective.hessian(method, at_x0=at_x0)
            return tensors_to_vec(g), H

        lstsq = bool(s["lstsq"])
        try:
            x_new = self.next_point(x0, evaluate, lambda J, v: solve(J, v, lstsq))
        finally:
            with torch.no_grad():
                for p, c in zip(params, vec_to_tensors(x0, params)):
                    p.copy_(c)
        objective.set_updates(vec_to_tensors(x0 - x_new, params), owned=True)
        return objective


class TwoPointNewton(HigherOrderMethodBase):
    """Two-point Newton with a frozen derivative (third order)::

        y     = x - F'(x)^-1 F(x)
        x_new = y - F'(x)^-1 F(y)

    Reference: Sharma & Kumar (2018), "A fast and efficient composite Newton-Chebyshev method for
    systems of nonlinear equations", Journal of Complexity 49, 56-73.
    """

    def next_point(self, x, evaluate, solve):
        Fx, Jx = evaluate(x)
        y = x - solve(Jx, Fx)
        Fy, _ = evaluate(y)
        return y - solve(Jx, Fy)


class SixthOrder3P(HigherOrderMethodBase):
    """Three-point sixth-order method::

        y     = x - F'(x)^-1 F(x)
        z     = y - F'(y)^-1 F(y)
        x_new = z - F'(y)^-1 F(z)

    Reference: Abro & Shaikh (2019), "A new time-efficient and convergent nonlinear solver",
    Applied Mathematics and Computation 355, 516-536.
    """

    def next_point(self, x, evaluate, solve):
        Fx, Jx = evaluate(x)
        y = x - solve(Jx, Fx)
        Fy, Jy = evaluate(y)
        z = y - solve(Jy, Fy)
        Fz, _ = evaluate(z)
        return z - solve(Jy, Fz)


class SixthOrder3PM2(HigherOrderMethodBase):
    """Sixth-order Newton-type method with one inversion of ``F'(x)``. With ``A = F'(x)^-1 F'(y)``::

        y     = x - F'(x)^-1 F(x)
        z     = y - (2 I - A) F'(x)^-1 F(y)
        x_new = z - (2 I - A) F'(x)^-1 F(z)

    Reference: Wang & Li (2017), "An efficient sixth-order Newton-type method for solving
    nonlinear systems", Algorithms 10(2), 45.
    """

    def next_point(self, x, evaluate, solve):
        Fx, Jx = evaluate(x)
        y = x - solve(Jx, Fx)
        Fy, Jy = evaluate(y)

        def step(v: torch.Tensor) -> torch.Tensor:
            w = solve(Jx, v)
            return 2 * w - solve(Jx, Jy @ w)

        z = y - step(Fy)
        Fz, _ = evaluate(z)
        return z - step(Fz)


class SixthOrder5P(HigherOrderMethodBase):
    """Sixth-order three-step method with Jacobians averaged over each step (five points)::

        y     = x - F'(x)^-1 F(x)
        z     = y - A(x, y)^-1 F(y)
        x_new = z - A(x, z)^-1 F(z)

        A(u, v) = (F'(u) + 2 F'((u + v) / 2) + F'(v)) / 4

    ``A(u, v)`` is the composite trapezoidal rule for the mean of ``F'`` on the segment from ``u``
    to ``v``, so each corrector is a Newton step with a secant-like averaged Jacobian. ``F`` and
    ``F'`` are evaluated at ``x``, ``y``, ``(x + y) / 2``, ``z`` and ``(x + z) / 2``.

    Both averages contain ``F'(x)``, which differs from ``F'`` at the root by ``O(e)`` (``e`` the
    error of ``x``); each corrector therefore gains one order: measured on smooth problems of one
    variable, ``e_new ~ C e^4``. The composition and its numbers are those of the reference
    implementation (torchzero 0.4.4).

    Reference: Argyros, I. K., Regmi, S., John, J. A., & Jayaraman, J. (2023). "Extended
    convergence for two sixth order methods under the same weak conditions". Foundations 3(1),
    127-139.
    """

    def next_point(self, x, evaluate, solve):
        Fx, Jx = evaluate(x)
        y = x - solve(Jx, Fx)
        Fy, Jy = evaluate(y)
        _, Jxy = evaluate((x + y) / 2)
        z = y - solve((Jx + 2 * Jxy + Jy) / 4, Fy)
        Fz, Jz = evaluate(z)
        _, Jxz = evaluate((x + z) / 2)
        return z - solve((Jx + 2 * Jxz + Jz) / 4, Fz)
