"""SOAP: Adam in the eigenbasis of Shampoo's preconditioner.

Besides the :class:`SOAP` module this file holds the Kronecker eigenbasis machinery that
``tz.m.SOAPBasis`` (``torchzero/modules/basis``) reuses: how a tensor is laid out for the
per-dim preconditioners, the Gram accumulators, the eigenbasis and its refresh.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ...core.transform import TensorTransform
from .shampoo import mode_product, unfold_gram

if TYPE_CHECKING:
    from ...core.chain import Chainable
    from ...core.objective import Objective


# ---------------------------------------------------------------------------------------------
# layout: which view of a tensor gets one preconditioner per dim


def kron_layout(shape: Sequence[int], merge_small: bool, max_dim: int, precondition_1d: bool
                ) -> tuple[list[int] | None, list[int], list[bool] | None]:
    """``(perm, work_shape, mask)`` for a tensor of ``shape``.

    The tensor is viewed as ``t.permute(perm).reshape(work_shape)`` (``perm`` None: no
    permutation). With ``merge_small`` the dims are ordered by size and the smallest ones are
    merged into one while their product stays ``<= max_dim``. ``mask[d]`` says whether dim ``d``
    of the view gets a preconditioner (``1 < size <= max_dim``); ``mask`` is None when the tensor
    is not preconditioned at all (0-d, or a vector without ``precondition_1d``).
    """
    shape = [int(s) for s in shape]
    perm: list[int] | None = None
    work = list(shape)
    if merge_small and len(shape) > 0:
        order = sorted(range(len(shape)), key=lambda i: shape[i])  # stable
        sizes = [shape[i] for i in order]
        if sizes[0] <= max_dim:
            n, prod = 0, 1
            while n < len(sizes) and prod * sizes[n] <= max_dim:
                prod *= sizes[n]
                n += 1
            perm = order
            work = [prod] + sizes[n:]
    if len(work) == 0 or (len(work) == 1 and not precondition_1d):
        return perm, work, None
    return perm, work, [1 < s <= max_dim for s in work]


def to_layout(t: torch.Tensor, perm: list[int] | None, work: Sequence[int]) -> torch.Tensor:
    if perm is not None:
        t = t.permute(perm)
    return t.reshape(work)


def from_layout(t: torch.Tensor, perm: list[int] | None, shape: Sequence[int]) -> torch.Tensor:
    if perm is None:
        return t.reshape(shape)
    permuted = [shape[i] for i in perm]
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return t.reshape(permuted).permute(inv)


# ---------------------------------------------------------------------------------------------
# the eigenbasis


def accumulate_grams(GG: list[torch.Tensor | None], t: torch.Tensor, beta: float | None) -> None:
    """``GG[d] <- beta GG[d] + (1 - beta) T_(d) T_(d)^T`` (a plain sum when ``beta`` is None)."""
    for d, A in enumerate(GG):
        if A is None:
            continue
        gram = unfold_gram(t, d)
        if beta is None:
            A.add_(gram)
        else:
            A.lerp_(gram, 1 - beta)


def new_grams(t: torch.Tensor, mask: Sequence[bool]) -> list[torch.Tensor | None]:
    return [torch.zeros(s, s, dtype=t.dtype, device=t.device) if m else None for s, m in zip(t.shape, mask)]


def _eigh(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        return torch.linalg.eigh(A)
    except torch.linalg.LinAlgError:
        L, Q = torch.linalg.eigh(A.double())
        return L.to(A.dtype), Q.to(A.dtype)


def eigenbasis(GG: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
    """Eigenvectors of each accumulator, columns by decreasing eigenvalue."""
    return [None if A is None else _eigh(A)[1].flip(1) for A in GG]


def start_bases(state: dict[str, Any], t: torch.Tensor, mask: Sequence[bool] | None, beta: float | None) -> None:
    """First step: the Gram accumulators ``state["GG"]`` of the preconditioned dims of ``t`` (in
    its working layout) and their eigenbases ``state["Q"]``; nothing when no dim is preconditioned."""
    if mask is not None:
        GG = state["GG"] = new_grams(t, mask)
        accumulate_grams(GG, t, beta)
        state["Q"] = eigenbasis(GG)


def refresh_eigenbasis(GG: Sequence[torch.Tensor | None], Q: Sequence[torch.Tensor | None]
                       ) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None]]:
    """One step of power iteration with a QR decomposition (Vyas et al., 2024, Algorithm 4).

    The old eigenvectors are ordered by their Rayleigh quotients ``diag(Q^T A Q)`` (decreasing);
    the new basis is ``QR(A Q_sorted).Q``, computed in float32 as in the authors' implementation.
    Returns the new bases and, per dim, the ordering applied (None for dims without one), so that
    buffers stored in the eigenbasis can be re-ordered to match.
    """
    newQ: list[torch.Tensor | None] = []
    orders: list[torch.Tensor | None] = []
    for A, Qo in zip(GG, Q):
        if A is None or Qo is None:
            newQ.append(None)
            orders.append(None)
            continue
        est = torch.diagonal(Qo.T @ A @ Qo)
        idx = torch.argsort(est, descending=True)
        power = A @ Qo[:, idx]
        qr_dtype = torch.float32 if power.dtype in (torch.float64, torch.float32) else power.dtype
        newQ.append(torch.linalg.qr(power.to(qr_dtype)).Q.to(A.dtype))
        orders.append(idx)
    return newQ, orders


def project(t: torch.Tensor, Q: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """``t x_1 Q_1^T x_2 Q_2^T ...`` (coordinates in the eigenbasis)."""
    for d, Qd in enumerate(Q):
        if Qd is not None:
            t = mode_product(t, Qd.T, d)
    return t


def project_back(t: torch.Tensor, Q: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """``t x_1 Q_1 x_2 Q_2 ...`` (inverse of :func:`project`)."""
    for d, Qd in enumerate(Q):
        if Qd is not None:
            t = mode_product(t, Qd, d)
    return t


def reorder(t: torch.Tensor, orders: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """Re-orders ``t`` along each dim with the orderings :func:`refresh_eigenbasis` returned."""
    for d, idx in enumerate(orders):
        if idx is not None:
            t = t.index_select(d, idx)
    return t


def refresh_due(step: int, precond_freq: int) -> bool:
    """The eigenbasis is refreshed after steps 2, 2 + f, 2 + 2f, ... (step 1 computes it by ``eigh``)."""
    return step >= 2 and (step - 2) % precond_freq == 0


FIRST_STEP_CLIP = 0.1


class SOAP(TensorTransform):
    """SOAP (Vyas, Morwani, Zhao, Kwun, Shapira, Brandfonbrener, Janson & Kakade, 2024, "SOAP:
    Improving and Stabilizing Shampoo using Adam", arXiv:2409.11321).

    Shampoo's Kronecker factors ``L_d`` (one per dim, EMAs of the Gram matrices of the mode-``d``
    unfoldings of the gradient ``G``) define an eigenbasis ``Q_d``; Adam runs on the coordinates of
    the gradient in that basis::

        L_d <- shampoo_beta L_d + (1 - shampoo_beta) G_(d) G_(d)^T   (a sum when shampoo_beta is None)
        G' = G x_1 Q_1^T x_2 Q_2^T ...                            (rotate into the eigenbasis)
        m  <- beta1 m + (1 - beta1) G'
        v  <- beta2 v + (1 - beta2) G'^2
        N  = alpha * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)
        update = N x_1 Q_1 x_2 Q_2 ...                            (rotate back)

    ``t`` counts every step. On the first step the accumulators are initialised and ``Q_d`` are
    their exact eigenvectors (``eigh``); that step's update is the incoming update clipped to
    ``[-0.1, 0.1]`` (``inner`` is not run). The bases are then refreshed after steps
    ``2, 2 + precond_freq, ...`` by one power iteration with a QR decomposition (the paper's
    Algorithm 4): the old eigenvectors are sorted by their Rayleigh quotients ``diag(Q^T L Q)``,
    ``Q <- QR(L Q).Q`` (in float32, like the authors' implementation), the first moment is
    rotated into the new basis (``m <- Q_new^T Q_old m``) and the second moment is re-ordered
    with the sort. With ``proj_exp_avg=False`` the first moment is kept in the original space
    (``m`` averages ``G`` and is rotated each step) instead.

    Layout: dims of size 1 and dims larger than ``max_dim`` get no factor (identity); with
    ``merge_small`` the dims are ordered by size and the smallest are merged into one while their
    product stays ``<= max_dim`` (a ``(4, 3)`` matrix becomes a 12-vector with a full-matrix
    basis). 0-d tensors, and vectors without ``precondition_1d``, get plain Adam.

    The accumulators are updated from the incoming update; Adam runs on the output of ``inner``.

    Args:
        beta1: decay of the first moment.
        beta2: decay of the second moment.
        shampoo_beta: decay of the Kronecker factors; None sums them (works worse).
        precond_freq: refresh the eigenbases every this many steps.
        merge_small: merge small dims (see above).
        max_dim: dims larger than this get no preconditioner.
        precondition_1d: give vectors a full-matrix eigenbasis (the paper does not).
        eps: added to the denominator.
        debias: Adam's bias correction.
        proj_exp_avg: keep the first moment in the eigenbasis (else in the original space).
        alpha: step size multiplier.
        inner: module(s) whose output Adam runs on.

    Example::

        opt = tz.Optimizer(model.parameters(), tz.m.SOAP(), tz.m.LR(1e-3))
    """

    inplace = False

    def __init__(self, beta1: float = 0.95, beta2: float = 0.95, shampoo_beta: float | None = 0.95,
                 precond_freq: int = 10, merge_small: bool = True, max_dim: int = 4096,
                 precondition_1d: bool = True, eps: float = 1e-8, debias: bool = True,
                 proj_exp_avg: bool = True, alpha: float = 1, inner: "Chainable | None" = None):
        if int(precond_freq) < 1:
            raise ValueError(f"precond_freq must be >= 1, got {precond_freq}")
        if int(max_dim) < 1:
            raise ValueError(f"max_dim must be >= 1, got {max_dim}")
        super().__init__(dict(beta1=beta1, beta2=beta2, shampoo_beta=shampoo_beta, precond_freq=int(precond_freq),
                              merge_small=merge_small, max_dim=int(max_dim), precondition_1d=precondition_1d,
                              eps=eps, debias=debias, proj_exp_avg=proj_exp_avg, alpha=alpha), inner=inner)

    @staticmethod
    def _layout(tensor: torch.Tensor, setting: Mapping[str, Any]):
        return kron_layout(tensor.shape, setting["merge_small"], setting["max_dim"], setting["precondition_1d"])

    @torch.no_grad()
    def single_tensor_update(self, tensor: torch.Tensor, param: torch.Tensor, grad: Any, loss: Any,
                             state: dict[str, Any], setting: Mapping[str, Any]) -> None:
        perm, work, mask = self._layout(tensor, setting)
        t = to_layout(tensor, perm, work)
        beta = setting["shampoo_beta"]
        step = state.get("step", 0)
        if step == 0:
            state["exp_avg"] = torch.zeros_like(t)
            state["exp_avg_sq"] = torch.zeros_like(t)
            start_bases(state, t, mask, beta)
            state["step"] = 1
            return
        GG = state.get("GG")
        if GG is not None:
            # the refresh due after the previous step, with the accumulators as they were then
            if refresh_due(step, setting["precond_freq"]):
                self._refresh(state, setting)
            accumulate_grams(GG, t, beta)
        state["step"] = step + 1

    @staticmethod
    def _refresh(state: dict[str, Any], setting: Mapping[str, Any]) -> None:
        Q_old = state["Q"]
        Q_new, orders = refresh_eigenbasis(state["GG"], Q_old)
        if setting["proj_exp_avg"]:
            state["exp_avg"] = project(project_back(state["exp_avg"], Q_old), Q_new)
        state["exp_avg_sq"] = reorder(state["exp_avg_sq"], orders)
        state["Q"] = Q_new

    def apply(self, objective: "Objective") -> "Objective":
        params = objective.params
        if all(self.state[p].get("step", 0) <= 1 for p in params):
            # first step: the bases were just computed; the update is clipped, inner is not run
            objective.set_updates([u.clamp(-FIRST_STEP_CLIP, FIRST_STEP_CLIP) for u in objective.peek_updates()], owned=True)
            return objective
        return super().apply(objective)

    @torch.no_grad()
    def single_tensor_apply(self, tensor: torch.Tensor, param: torch.Tensor, grad: Any, loss: Any,
                            state: dict[str, Any], setting: Mapping[str, Any]) -> torch.Tensor:
        step = state["step"]
        if step <= 1:
            return tensor.clamp(-FIRST_STEP_CLIP, FIRST_STEP_CLIP)
        perm, work, _ = self._layout(tensor, setting)
        t = to_layout(tensor, perm, work)
        Q = state.get("Q") or []
        beta1, beta2 = setting["beta1"], setting["beta2"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        t_proj = project(t, Q)
        if setting["proj_exp_avg"]:
            exp_avg.mul_(beta1).add_(t_proj, alpha=1 - beta1)
            m = exp_avg
        else:
            exp_avg.mul_(beta1).add_(t, alpha=1 - beta1)
            m = project(exp_avg, Q)
        exp_avg_sq.mul_(beta2).addcmul_(t_proj, t_proj, value=1 - beta2)
        out = m / (exp_avg_sq.sqrt() + setting["eps"])
        scale = setting["alpha"]
        if setting["debias"]:
            scale = scale * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
        out = project_back(out, Q)
        if scale != 1:
            out.mul_(scale)
        return from_layout(out, perm, tensor.shape)
