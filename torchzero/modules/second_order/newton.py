"""Newton's method with an exact (or finite-difference) Hessian."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import Transform
from ...linalg import Dense, DenseInverse
from ...utils.params import tensors_to_vec, vec_to_tensors
from ._linalg import factor_system, solve_system

HessianMethod = Literal["batched_autograd", "autograd", "functional_revrev", "functional_fwdrev", "func",
                        "gfd_forward", "gfd_central", "fd", "fd_full", "thoad"]


class Newton(Transform):
    """Newton's method: ``update = (H + damping I)^-1 u`` with ``H`` the Hessian at the current point.

    ``u`` is the gradient, or the output of ``inner`` when given (Newton preconditioning of another
    module's update). Followed by nothing, a step jumps to the stationary point of the local
    quadratic model ``f(x) + g^T d + d^T H d / 2``; on a strictly convex quadratic this is the
    minimiser after one step.

    The system is solved by Cholesky, falling back to LU and then to least squares
    (``use_lstsq=True`` goes straight to least squares). With ``eigval_fn`` (or ``eigv_tol`` /
    ``truncate``) the damped Hessian is eigendecomposed, ``H = Q diag(L) Q^T``, the eigenvalues are
    transformed by ``eigval_fn`` (``lambda L: L.abs().clip(min=1e-4)`` makes the model convex, the
    usual fix for non-convex problems), eigenpairs with ``|L_i| < eigv_tol max|L|`` are dropped,
    only the ``truncate`` largest are kept, and ``update = Q diag(1/L) Q^T u``.

    Reference: Nocedal & Wright (2006), "Numerical Optimization", 2nd ed., chapter 3.3.

    Args:
        damping: ``lambda`` added to the Hessian diagonal (Tikhonov regularisation).
        eigval_fn: function applied to the Hessian's eigenvalues (uses an eigendecomposition).
        eigv_tol: relative threshold below which eigenpairs are dropped.
        truncate: number of largest-magnitude eigenpairs to keep.
        update_freq: recompute the Hessian every this many steps (the last one is reused in between).
        precompute_inverse: store ``H^-1`` when the Hessian is computed (cheaper when it is reused);
            ``None`` means ``update_freq >= 10``.
        use_lstsq: solve by least squares.
        hessian_method: how the Hessian is computed (see :meth:`Objective.hessian`): exact via
            autograd (``batched_autograd``, ``autograd`` and the ``functional_*`` / ``func``
            aliases), gradient finite differences (``gfd_forward``, ``gfd_central``) or function
            value finite differences (``fd``, ``fd_full``).
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

    # the Hessian (possibly modified) that this module inverts
    def _hessian(self, objective: Objective, s: Mapping[str, Any]) -> torch.Tensor:
        _, _, H = objective.hessian(s["hessian_method"], s["h"], at_x0=True)
        return H

    def update_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        s = settings[0]
        H = self._hessian(objective, s)
        if s["damping"] != 0:
            H = H + s["damping"] * torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
        factor_system(self.global_state, H, s, self._update_freq, "H")

    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        u = tensors_to_vec(objective.peek_updates())
        d = solve_system(self.global_state, u, settings[0]["use_lstsq"], "H")
        objective.set_updates(vec_to_tensors(d, objective.params), owned=True)
        return objective

    def get_H(self, objective: Objective | None = None) -> Dense | None:
        gs = self.global_state
        if "L" in gs:
            Q, L = gs["Q"], gs["L"]
            return Dense((Q * L) @ Q.T)
        if "H" in gs:
            return Dense(gs["H"])
        return None


class InverseFreeNewton(Transform):
    """Inverse-free Newton: the inverse Hessian is tracked by Newton-Schulz (Hotelling) iterations.

    Instead of solving with the Hessian, an approximation ``Y`` of ``H^-1`` is refined by one
    Newton-Schulz step each time the Hessian is computed::

        Y_0 = H_0^T / (||H_0||_1 ||H_0||_inf)          (Pan & Schreiber's initial guess)
        Y_k = Y_{k-1} (2 I - H_k Y_{k-1})
        update = Y_k u

    Only matrix products are needed. References: Schulz (1933), "Iterative Berechnung der
    reziproken Matrix", ZAMM 13(1); Pan & Schreiber (1991), "An improved Newton iteration for the
    generalized inverse of a matrix", SIAM J. Sci. Stat. Comput. 12(5).

    Args:
        update_freq: recompute the Hessian (and refine ``Y``) every this many steps.
        hessian_method: how the Hessian is computed (see :class:`Newton`).
        h: finite-difference step.
        inner: modules whose output is preconditioned.
    """

    def __init__(self, update_freq: int = 1, hessian_method: HessianMethod = "batched_autograd", h: float = 1e-3,
                 inner: Chainable | None = None):
        super().__init__(dict(hessian_method=hessian_method, h=h), update_freq=update_freq, inner=inner)

    def update_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        s = settings[0]
        _, _, H = objective.hessian(s["hessian_method"], s["h"], at_x0=True)
        Y = self.global_state.get("Y")
        if Y is None:
            n1 = torch.linalg.matrix_norm(H, 1)
            ninf = torch.linalg.matrix_norm(H, float("inf"))
            denom = n1 * ninf
            Y = H.T / denom if denom > 0 else torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
        else:
            Y = 2 * Y - Y @ H @ Y
        self.global_state["Y"] = Y

    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        u = tensors_to_vec(objective.peek_updates())
        d = self.global_state["Y"] @ u
        objective.set_updates(vec_to_tensors(d, objective.params), owned=True)
        return objective

    def get_H(self, objective: Objective | None = None) -> DenseInverse | None:
        """The Hessian approximation this module applies: ``Y^-1``."""
        Y = self.global_state.get("Y")
        return None if Y is None else DenseInverse(Y)
