"""Finite-difference stencils for a first derivative along a direction.

For a direction ``d`` and step ``h`` the derivative of ``t -> f(x + t d)`` at 0 is estimated as
``sum_k w_k f(x + o_k h d) / h`` over the stencil's offsets ``o_k`` and weights ``w_k`` (the
standard Taylor-series stencils; e.g. Fornberg, 1988, "Generation of finite difference formulas
on arbitrarily spaced grids", Math. Comp. 51(184), doi:10.1090/S0025-5718-1988-0935077-0).

=============  ==========================  ===================================  =========
formula        offsets                     weights                              error
=============  ==========================  ===================================  =========
forward(2)     0, 1                        -1, 1                                O(h)
backward(2)    0, -1                       1, -1                                O(h)
central(2, 3)  1, -1                       1/2, -1/2                            O(h^2)
forward3       0, 1, 2                     -3/2, 2, -1/2                        O(h^2)
backward3      0, -1, -2                   3/2, -2, 1/2                         O(h^2)
central4       1, 2, -1, -2                2/3, -1/12, -2/3, 1/12               O(h^4)
forward4       0, 1, 2, 3                  -11/6, 3, -3/2, 1/3                  O(h^3)
forward5       0, 1, 2, 3, 4               -25/12, 4, -3, 4/3, -1/4             O(h^4)
=============  ==========================  ===================================  =========

``central3`` is the three-point central stencil, whose middle weight is zero, so it is the same
as ``central2``. Offset 0 is the unperturbed point: its loss is the loss of the step.
"""
from __future__ import annotations

Stencil = tuple[tuple[int, ...], tuple[float, ...]]

_FORWARD2: Stencil = ((0, 1), (-1.0, 1.0))
_BACKWARD2: Stencil = ((0, -1), (1.0, -1.0))
_CENTRAL2: Stencil = ((1, -1), (0.5, -0.5))

STENCILS: dict[str, Stencil] = {
    "forward": _FORWARD2,
    "forward2": _FORWARD2,
    "backward": _BACKWARD2,
    "backward2": _BACKWARD2,
    "central": _CENTRAL2,
    "central2": _CENTRAL2,
    "central3": _CENTRAL2,
    "forward3": ((0, 1, 2), (-1.5, 2.0, -0.5)),
    "backward3": ((0, -1, -2), (1.5, -2.0, 0.5)),
    "central4": ((1, 2, -1, -2), (2 / 3, -1 / 12, -2 / 3, 1 / 12)),
    "forward4": ((0, 1, 2, 3), (-11 / 6, 3.0, -1.5, 1 / 3)),
    "forward5": ((0, 1, 2, 3, 4), (-25 / 12, 4.0, -3.0, 4 / 3, -0.25)),
}


def get_stencil(formula: str) -> Stencil:
    """The stencil of ``formula`` (``ValueError`` naming the argument for an unknown one)."""
    st = STENCILS.get(formula)
    if st is None:
        raise ValueError(f"formula must be one of {sorted(STENCILS)}, got {formula!r}")
    return st
