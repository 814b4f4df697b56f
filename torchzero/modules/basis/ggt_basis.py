"""GGTBasis: any optimizer run in the basis GGT builds from a window of recent gradients."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ...core.transform import TensorTransform
from ._reproject import projected_keys

if TYPE_CHECKING:
    from ...core.chain import Chainable
    from ...core.objective import Objective

_KEY = "basis_opt"


def ggt_basis(H: torch.Tensor, setting: Mapping[str, Any]) -> torch.Tensor:
    """``U = M V diag(L)^p`` from the window ``M = H^T`` (``n x r``) through its ``r x r`` Gram
    matrix ``M^T M + d I = V diag(L) V^T`` (``d = damping + rdamping * lambda_max``), keeping
    eigenvalues above ``eig_tol * max(L)`` and at most ``truncate`` of the largest."""
    L, V = torch.linalg.eigh(H @ H.T)
    L = L + (setting["damping"] + setting["rdamping"] * float(L.max().clamp(min=0)))
    keep = L > setting["eig_tol"] * L.max()
    L, V = L[keep], V[:, keep]
    if setting["truncate"] is not None:
        L, V = L[-int(setting["truncate"]):], V[:, -int(setting["truncate"]):]
    return H.T @ (V * L.pow(setting["matrix_power"]))


class GGTBasis(TensorTransform):
    """Runs ``basis_opt`` in the GGT basis (Agarwal, Bullins, Chen, Hazan, Singer, Zhang & Zhang,
    2019, "Efficient Full-Matrix Adaptive Regularization", ICML; arXiv:1806.02958).

    The last ``history_size`` incoming updates (all parameters concatenated into one vector) form
    ``M`` (``n x r``); every ``update_freq`` steps the basis is recomputed from the small Gram
    matrix as in :class:`~torchzero.modules.matrix_adaptive.GGT`::

        M^T M + (damping + rdamping * lambda_max) I = V diag(L) V^T
        U = M V diag(L)^matrix_power               (orthonormal for -1/2 without damping)
        z = U^T u,   update = U basis_opt(z)       (u: the output of ``inner``, else the update)

    The basis has at most ``history_size`` directions, so ``basis_opt`` can be expensive
    (full-matrix methods run on an ``r``-vector). When the basis changes, the buffers of
    ``basis_opt`` follow it with ``R = U_new^T U_old`` (``r_new x r_old``): buffers linear in the
    gradient become ``R m``, second moments ``(R * R) v`` (the diagonal of ``R diag(v) R^T``).
    Supported modules are listed in ``torchzero.modules.basis._reproject``; buffers of other
    modules are kept while the rank is unchanged and dropped when it changes.

    Args:
        basis_opt: module(s) run in the basis.
        history_size: number of recent updates kept (the rank of the basis).
        update_freq: recompute the basis every this many steps (the window takes every update).
        eig_tol: drop eigenvalues below ``eig_tol`` times the largest.
        truncate: keep at most this many largest eigenvalues (None keeps all).
        damping: added to the Gram matrix's eigenvalues.
        rdamping: damping relative to the largest eigenvalue.
        matrix_power: exponent of the eigenvalues in ``U``.
        approx_sq_reproject: accepted for compatibility; second moments are always mapped by
            ``(R * R) v``.
        approx_cu_reproject: accepted for compatibility (no supported module keeps cubes).
        inner: module(s) whose output is projected and passed to ``basis_opt`` (the window takes
            the incoming update).

    Example: Adam in the GGT basis::

        opt = tz.Optimizer(model.parameters(), tz.m.GGTBasis(tz.m.Adam()), tz.m.LR(1e-3))
    """

    inplace = False

    def __init__(self, basis_opt: "Chainable", history_size: int = 100, update_freq: int = 1, eig_tol: float = 1e-7,
                 truncate: int | None = None, damping: float = 1e-4, rdamping: float = 0, matrix_power: float = -1 / 2,
                 approx_sq_reproject: bool = False, approx_cu_reproject: bool = False, inner: "Chainable | None" = None):
        if int(history_size) < 1:
            raise ValueError(f"history_size must be >= 1, got {history_size}")
        if int(update_freq) < 1:
            raise ValueError(f"update_freq must be >= 1, got {update_freq}")
        super().__init__(dict(history_size=int(history_size), update_freq=int(update_freq), eig_tol=eig_tol,
                              truncate=truncate, damping=damping, rdamping=rdamping, matrix_power=matrix_power,
                              approx_sq_reproject=approx_sq_reproject, approx_cu_reproject=approx_cu_reproject),
                         concat_params=True, inner=inner)
        self.set_child(_KEY, basis_opt)

    @torch.no_grad()
    def multi_tensor_update(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                            states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        (t,), (st,), (se,) = tensors, states, settings
        g = t.detach().reshape(1, -1)
        H = st.get("history")
        H = g.clone() if H is None else torch.cat([H, g])[-se["history_size"]:]
        st["history"] = H
        st["n"] = n = st.get("n", 0) + 1
        if (n - 1) % se["update_freq"] != 0:
            return
        U_old = st.get("U")
        U = st["U"] = ggt_basis(H, se)
        if U_old is not None:
            self._reproject(U.T @ U_old)

    def _reproject(self, R: torch.Tensor) -> None:
        old = self._fake_params.get(_KEY)
        if old is None:
            return
        (old_fake,) = old
        new_fake = old_fake if R.shape[0] == R.shape[1] else self.get_fake_params(_KEY, [R.new_empty(R.shape[0])])[0]
        maps = {"grad": lambda b: R @ b, "grad_sq": lambda b: (R * R) @ b}
        for m in self.children[_KEY].modules():
            if old_fake not in m.state:
                continue
            st = m.state.pop(old_fake)
            keys = projected_keys(m)
            done = set()
            for kind, names in keys.items():
                fn = maps.get(kind)
                for name in names:
                    buf = st.get(name)
                    if fn is not None and isinstance(buf, torch.Tensor) and buf.shape == old_fake.shape:
                        st[name] = fn(buf)
                        done.add(name)
            if new_fake is not old_fake:
                # buffers that cannot follow a change of rank are dropped
                for k in [k for k, v in st.items() if k not in done and isinstance(v, torch.Tensor) and v.shape == old_fake.shape]:
                    del st[k]
            m.state[new_fake] = st

    @torch.no_grad()
    def apply_states(self, objective: "Objective", states: Any, settings: Any) -> "Objective":
        from ...utils.params import tensors_to_vec, vec_to_tensors
        params = objective.params
        vparams = self.get_fake_params("__concat", [tensors_to_vec(objective.peek_updates())])
        U = self.state[vparams[0]]["U"]
        updates = objective.peek_updates()
        z = U.T @ tensors_to_vec(updates)
        grads = objective.grads
        if grads is None:
            zg = None
        elif all(g is u for g, u in zip(grads, updates)):
            zg = [z.clone()]
        else:
            zg = [U.T @ tensors_to_vec(grads)]
        (o,) = self.inner_step_tensors(_KEY, [z], clone=False, grads=zg, loss=objective.loss)
        objective.set_updates(vec_to_tensors(U @ o, params), owned=True)
        return objective
