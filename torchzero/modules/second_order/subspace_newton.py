"""Newton's method restricted to a low-dimensional subspace (randomized subspace Newton)."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import Transform
from ...utils.params import tensors_to_vec, vec_to_tensors
from ._linalg import eig_solve, eigh_transform, inverse, solve
from ._sketch import hessian_times

SketchType = Literal["orthonormal", "common_directions", "mixed", "rademacher", "rows", "topk"]
_SKETCHES = ("orthonormal", "common_directions", "mixed", "rademacher", "rows", "topk")


def _orthonormal_columns(A: torch.Tensor) -> torch.Tensor:
    Q, R = torch.linalg.qr(A)
    keep = R.diagonal().abs() > 1e-12 * max(float(R.diagonal().abs().max()), 1e-300) if R.numel() else None
    return Q if keep is None else Q[:, keep]


class SubspaceNewton(Transform):
    """Subspace Newton: a Newton step restricted to the span of a basis ``S`` (``n x k``, ``k << n``).

    Each update the projected Hessian ``H_S = S^T H S`` is formed from ``k`` Hessian-vector products
    ``H S`` (``k x k``, plus ``damping I``); the step solves the projected Newton system::

        H_S z = S^T u,        update = S z

    with ``u`` the gradient (or the output of ``inner``). When ``S`` spans the whole space this is
    Newton's method. The basis (``sketch_type``):

    * ``"common_directions"``: the steepest-descent directions of past steps, orthonormalised
      on-line by Gram-Schmidt; the oldest is dropped when more than ``sketch_size`` are kept
      (Wang, Lee & Lin 2019);
    * ``"orthonormal"``: a random orthonormal basis (QR of a Gaussian matrix; Gower et al. 2019);
    * ``"rows"``: ``k`` distinct random coordinate directions;
    * ``"topk"``: the coordinate directions of the ``k`` largest gradient magnitudes;
    * ``"rademacher"``: random signs scaled by ``1/sqrt(n)`` (nearly orthonormal for large ``n``);
    * ``"mixed"``: a random orthonormal basis whose first columns span the gradient, a slow and a
      fast gradient EMA and the previous update.

    The projected system is solved as in :class:`Newton` (Cholesky / LU / least squares; with
    ``eigval_fn``, ``eigv_tol`` or ``truncate`` by a transformed eigendecomposition of ``H_S``).

    References: Gower, Kovalev, Lieder & Richtarik (2019), "RSN: Randomized Subspace Newton",
    NeurIPS 32, arXiv:1905.10874; Wang, Lee & Lin (2019), "The common-directions method for
    regularized empirical risk minimization", JMLR 20(58).

    Args:
        sketch_size: subspace dimension ``k`` (Hessian-vector products per update).
        sketch_type: how the basis is chosen (see above).
        damping: ``lambda`` added to the diagonal of the projected Hessian.
        eigval_fn: function applied to the projected Hessian's eigenvalues.
        eigv_tol: relative threshold below which eigenpairs are dropped.
        truncate: number of largest-magnitude eigenpairs to keep.
        update_freq: recompute the basis and projected Hessian every this many steps.
        precompute_inverse: store ``H_S^-1`` when it is computed.
        use_lstsq: solve the projected system by least squares.
        hvp_method: ``"batched_autograd"``, ``"autograd"``, ``"fd_forward"`` or ``"fd_central"``.
        h: finite-difference step.
        seed: seed of the random basis.
        inner: modules whose output is preconditioned.
    """

    def __init__(self, sketch_size: int = 100, sketch_type: SketchType = "common_directions", damping: float = 0,
                 eigval_fn: Callable[[torch.Tensor], torch.Tensor] | None = None, eigv_tol: float | None = None,
                 truncate: int | None = None, update_freq: int = 1, precompute_inverse: bool = False,
                 use_lstsq: bool = False,
                 hvp_method: Literal["batched_autograd", "autograd", "fd_forward", "fd_central"] = "batched_autograd",
                 h: float = 1e-2, seed: int | None = None, inner: Chainable | None = None):
        if sketch_type not in _SKETCHES:
            raise ValueError(f"sketch_type must be one of {_SKETCHES}, got {sketch_type!r}")
        if sketch_size < 1:
            raise ValueError(f"sketch_size must be >= 1, got {sketch_size}")
        defaults = dict(sketch_size=sketch_size, sketch_type=sketch_type, damping=damping, eigval_fn=eigval_fn,
                        eigv_tol=eigv_tol, truncate=truncate, precompute_inverse=precompute_inverse,
                        use_lstsq=use_lstsq, hvp_method=hvp_method, h=h, seed=seed)
        super().__init__(defaults, update_freq=update_freq, inner=inner)

    def _basis(self, objective: Objective, s: Mapping[str, Any]) -> torch.Tensor:
        g = tensors_to_vec(objective.get_grads())
        n = g.numel()
        k = min(int(s["sketch_size"]), n)
        kind = s["sketch_type"]
        gen = self.get_generator(g.device, s["seed"])
        gs = self.global_state
        if kind == "common_directions":
            basis = gs.get("directions")
            basis = None if basis is None or basis.shape[0] != n else basis
            gnorm = torch.linalg.vector_norm(g)
            if basis is None:
                basis = (g / gnorm).unsqueeze(1) if gnorm > 0 else g.new_zeros(n, 0)
            else:
                if basis.shape[1] >= k:  # make room: the oldest direction is dropped
                    basis = basis[:, basis.shape[1] - k + 1:]
                v = g.clone()
                for _ in range(2):  # re-orthogonalised Gram-Schmidt
                    v = v - basis @ (basis.T @ v)
                vnorm = torch.linalg.vector_norm(v)
                if vnorm > 1e-8 * gnorm and vnorm > 0:
                    basis = torch.cat([basis, (v / vnorm).unsqueeze(1)], 1)
            gs["directions"] = basis
            return basis
        if kind == "orthonormal":
            return _orthonormal_columns(torch.randn(n, k, generator=gen, dtype=g.dtype, device=g.device))
        if kind == "rademacher":
            signs = torch.randint(0, 2, (n, k), generator=gen, device=g.device).to(g.dtype) * 2 - 1
            return signs / n ** 0.5
        if kind in ("rows", "topk"):
            if kind == "rows":
                idx = torch.randperm(n, generator=gen, device=g.device)[:k]
            else:
                idx = torch.topk(g.abs(), k).indices
            S = g.new_zeros(n, k)
            S[idx, torch.arange(k, device=g.device)] = 1
            return S
        # mixed: gradient, slow and fast gradient EMAs, previous update, then random directions
        slow = gs.get("ema_slow")
        fast = gs.get("ema_fast")
        slow = g.clone() if slow is None or slow.shape != g.shape else slow.lerp(g, 0.1)
        fast = g.clone() if fast is None or fast.shape != g.shape else fast.lerp(g, 0.5)
        gs["ema_slow"], gs["ema_fast"] = slow, fast
        cols = [g, slow, fast]
        prev = gs.get("prev_update")
        if prev is not None and prev.shape == g.shape:
            cols.append(prev)
        Q = _orthonormal_columns(torch.stack(cols, 1))[:, :k]  # dependent directions are dropped
        R = torch.randn(n, k - Q.shape[1], generator=gen, dtype=g.dtype, device=g.device)
        R = R - Q @ (Q.T @ R)
        return torch.cat([Q, _orthonormal_columns(R)], 1)

    def update_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        s = settings[0]
        S = self._basis(objective, s)
        gs = self.global_state
        for key in ("S", "H", "H_inv", "L", "Q"):
            gs.pop(key, None)
        gs["S"] = S
        if S.shape[1] == 0:
            return
        HS = hessian_times(objective, S, s["hvp_method"], s["h"])
        H = S.T @ HS
        H = (H + H.T) / 2
        if s["damping"] != 0:
            H = H + s["damping"] * torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
        gs["H"] = H
        if s["eigval_fn"] is not None or s["eigv_tol"] is not None or s["truncate"] is not None:
            gs["L"], gs["Q"] = eigh_transform(H, s["eigval_fn"], s["eigv_tol"], s["truncate"])
        elif s["precompute_inverse"]:
            gs["H_inv"] = inverse(H, s["use_lstsq"])

    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        u = tensors_to_vec(objective.peek_updates())
        gs = self.global_state
        S = gs["S"]
        if S.shape[1] == 0 or S.shape[0] != u.numel():
            d = torch.zeros_like(u)
        else:
            b = S.T @ u
            if "L" in gs:
                z = eig_solve(gs["L"], gs["Q"], b)
            elif "H_inv" in gs:
                z = gs["H_inv"] @ b
            else:
                z = solve(gs["H"], b, settings[0]["use_lstsq"])
            d = S @ z
        if settings[0]["sketch_type"] == "mixed":
            gs["prev_update"] = d.clone()
        objective.set_updates(vec_to_tensors(d, objective.params), owned=True)
        return objective
