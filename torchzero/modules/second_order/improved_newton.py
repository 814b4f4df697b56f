"""Improved Newton's method (INM): Newton with a rank-one revision of the Hessian from a rational model."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import Transform
from ...linalg import Dense
from ...utils.params import tensors_to_vec, vec_to_tensors
from ._linalg import factor_system, solve_system
from .newton import HessianMethod


class ImprovedNewton(Transform):
    """Improved Newton's method (INM) of Saheya et al. (2016).

    The root of ``F(x) = grad f(x) = 0`` is sought with the rational model (linear numerator and
    denominator, a generalisation of the local linear model)::

        F(x_k + s) ~ F_k + J_k s / (1 + b_k^T s)

    whose zero solves ``(J_k + F_k b_k^T) s = -F_k``: the Hessian ``J_k`` is revised by the
    rank-one matrix ``F_k b_k^T``. ``b_k`` makes the model reproduce the previous point
    ``x_{k-1} = x_k + s_{k-1}``: with ``y = F_{k-1} - F_k``, the scalar ``t = 1 + b_k^T s_{k-1}``
    should satisfy ``t y = J_k s_{k-1}``, which is solved in the least-squares sense, and ``b_k`` is
    the smallest vector with that inner product::

        t   = y^T J_k s_{k-1} / y^T y
        b_k = (t - 1) s_{k-1} / s_{k-1}^T s_{k-1}
        M_k = J_k + damping I + F_k b_k^T
        update = M_k^-1 u          (u: the gradient, or the output of ``inner``)

    The first step (no previous point) is a Newton step; so is any step where ``y`` or ``s`` is zero
    or ``M_k`` is singular. On a quadratic ``y = J s`` exactly, so ``t = 1`` and INM is Newton's
    method. For one variable the step is the root of the rational function through ``(x_k, F_k)``
    with slope ``J_k`` that passes through ``(x_{k-1}, F_{k-1})``.

    ``M_k`` is not symmetric; it is inverted exactly through Sherman-Morrison,
    ``M^-1 u = A^-1 u - A^-1 F (b^T A^-1 u) / (1 + b^T A^-1 F)`` with ``A = J_k + damping I``, so
    only the symmetric ``A`` is factorised (Cholesky, then LU, then least squares, as in
    :class:`Newton`). ``eigval_fn`` / ``eigv_tol`` / ``truncate`` modify the eigenvalues of ``A``
    (``A^-1`` becomes a pseudo-inverse where eigenpairs are dropped) before the revision.

    Reference: Saheya, B., Chen, G., Sui, Y., & Wu, C. (2016). "A new Newton-like method for
    solving nonlinear equations". SpringerPlus 5, 1269. doi:10.1186/s40064-016-2909-7

    Args:
        damping: ``lambda`` added to the Hessian diagonal (not used for ``t``, which interpolates
            the true gradient).
        eigval_fn: function applied to the eigenvalues of the damped Hessian.
        eigv_tol: relative threshold below which eigenpairs are dropped.
        truncate: number of largest-magnitude eigenpairs to keep.
        update_freq: recompute the Hessian and the revision every this many steps (the previous
            point of the interpolation is the previous update point).
        precompute_inverse: store ``M^-1`` when it is computed; ``None`` means ``update_freq >= 10``.
        use_lstsq: solve by least squares.
        hessian_method: how the Hessian is computed (see :class:`Newton`).
        h: finite-difference step.
        inner: modules whose output is preconditioned.
    """

    def __init__(self, damping: float = 0, eigval_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 eigv_tol: float | None = None, truncate: int | None = None, update_freq: int = 1,
                 precompute_inverse: bool | None = None, use_lstsq: bool = False,
                 hessian_method: HessianMethod = "batched_autograd", h: float = 1e-3, inner: Chainable | None = None):
        defaults = dict(damping=damping, eigval_fn=eigval_fn, eigv_tol=eigv_tol, truncate=truncate,
                        precompute_inverse=precompute_inverse, use_lstsq=use_lstsq, hessian_method=hessian_method, h=h)
        super().__init__(defaults, update_freq=update_freq, inner=inner)

    @staticmethod
    def _revision(H: torch.Tensor, x: torch.Tensor, F: torch.Tensor, x_prev: torch.Tensor | None,
                  F_prev: torch.Tensor | None) -> torch.Tensor | None:
        """``b`` of the rank-one revision ``F b^T`` (None where it is undefined)."""
        if x_prev is None or F_prev is None or x_prev.shape != x.shape:
            return None
        s = x_prev - x
        y = F_prev - F
        ss = s @ s
        yy = y @ y
        if ss <= 0 or yy <= 0:
            return None
        t = (y @ (H @ s)) / yy
        b = (t - 1) * s / ss
        return b if torch.isfinite(b).all() else None

    def _solve_A(self, v: torch.Tensor, use_lstsq: bool) -> torch.Tensor:
        return solve_system(self.global_state, v, use_lstsq, "A")

    def update_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        s = settings[0]
        _, grads, H = objective.hessian(s["hessian_method"], s["h"], at_x0=True)
        F = tensors_to_vec(grads)
        x = tensors_to_vec([p.detach() for p in objective.params])
        gs = self.global_state
        b = self._revision(H, x, F, gs.get("x_prev"), gs.get("F_prev"))
        gs["x_prev"], gs["F_prev"] = x, F

        A = H
        if s["damping"] != 0:
            A = H + s["damping"] * torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
        for k in ("M_inv", "F", "b", "AF", "denom"):
            gs.pop(k, None)
        factor_system(gs, A, s, self._update_freq, "A")

        if b is not None:
            AF = self._solve_A(F, s["use_lstsq"])
            denom = 1 + b @ AF
            # a (numerically) singular M: keep the Newton step
            if torch.isfinite(denom) and denom.abs() > torch.finfo(denom.dtype).eps * (1 + (b @ b).sqrt() * AF.norm()):
                gs["F"], gs["b"], gs["AF"], gs["denom"] = F, b, AF, denom
                if "A_inv" in gs:
                    gs["M_inv"] = gs["A_inv"] - torch.outer(AF, b @ gs["A_inv"]) / denom

    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        u = tensors_to_vec(objective.peek_updates())
        gs = self.global_state
        if "M_inv" in gs:
            d = gs["M_inv"] @ u
        elif "b" in gs:
            AF = gs["AF"]
            if torch.equal(u, gs["F"]):  # the gradient at the update point: A^-1 u is known
                d = AF / gs["denom"]
            else:
                Au = self._solve_A(u, settings[0]["use_lstsq"])
                d = Au - AF * ((gs["b"] @ Au) / gs["denom"])
        else:
            d = self._solve_A(u, settings[0]["use_lstsq"])
        objective.set_updates(vec_to_tensors(d, objective.params), owned=True)
        return objective

    def get_H(self, objective: Objective | None = None) -> Dense | None:
        """The revised Hessian ``M = A + F b^T`` this module inverts (not symmetric in general)."""
        gs = self.global_state
        if "L" in gs:
            Q, L = gs["Q"], gs["L"]
            A = (Q * L) @ Q.T
        elif "A" in gs:
            A = gs["A"]
        else:
            return None
        if "b" in gs:
            A = A + torch.outer(gs["F"], gs["b"])
        return Dense(A)
