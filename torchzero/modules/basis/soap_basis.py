"""SOAPBasis: any optimizer run in the eigenbases of Shampoo's Kronecker factors."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ...core.transform import TensorTransform
from ..matrix_adaptive.soap import (
    FIRST_STEP_CLIP, accumulate_grams, from_layout, kron_layout, project, project_back, refresh_due,
    refresh_eigenbasis, reorder, start_bases, to_layout,
)
from ._reproject import reproject_buffers

if TYPE_CHECKING:
    from ...core.chain import Chainable
    from ...core.objective import Objective

_KEY = "basis_opt"


class SOAPBasis(TensorTransform):
    """Runs ``basis_opt`` in the eigenbases of Shampoo's Kronecker factors; SOAP (Vyas et al., 2024,
    "SOAP: Improving and Stabilizing Shampoo using Adam", arXiv:2409.11321) with any optimizer in
    place of Adam.

    The bases are those of :class:`~torchzero.modules.matrix_adaptive.SOAP`: per dim ``d`` an EMA
    ``L_d`` of the Gram matrices of the mode-``d`` unfoldings of the incoming update ``G`` (a sum
    when ``shampoo_beta`` is None), eigenvectors ``Q_d`` by ``eigh`` on the first step, refreshed
    after steps ``2, 2 + precond_freq, ...`` by one QR power iteration. Each step::

        G' = U x_1 Q_1^T x_2 Q_2^T ...      (U: the output of ``inner``, else G)
        update = basis_opt(G') x_1 Q_1 x_2 Q_2 ...

    ``basis_opt`` keeps its state in the eigenbasis. When a basis is refreshed its buffers are
    re-expressed in the new one: buffers linear in the gradient (momentum) are rotated,
    ``m <- Q_new^T Q_old m``, and elementwise magnitudes (second moments) are re-ordered with the
    eigenvectors, as SOAP does for Adam. Supported: Adam, RMSprop, Adagrad, Adan, Lion,
    MARSCorrection, EMA, HeavyBall, NAG, ClipNormByEMA, NormalizeByEMA, ClipValueByEMA,
    EMASquared, SqrtEMASquared, and modules without buffers (Sign, Cautious, ClipNorm, ...). Others
    keep their buffers unchanged; modules that use the parameter values (weight decay) cannot be
    run in a basis. An ``EMA`` of ``Pow(2)`` is rotated as a gradient, not as a square: use
    ``EMASquared`` / ``SqrtEMASquared`` for squares.

    The first step computes the bases and returns the incoming update clipped to ``[-0.1, 0.1]``
    (``inner`` and ``basis_opt`` do not run). ``basis_opt`` sees the projected update as its
    gradient too. Dims of size 1 or larger than ``max_dim`` are not rotated; with ``merge_small``
    the smallest dims are merged while their product stays ``<= max_dim``; 0-d tensors and vectors
    without ``precondition_1d`` are not rotated at all.

    Args:
        basis_opt: module(s) run in the eigenbases.
        shampoo_beta: decay of the Kronecker factors; None sums them.
        precond_freq: refresh the eigenbases every this many steps.
        merge_small: merge small dims.
        max_dim: dims larger than this are not rotated.
        precondition_1d: rotate vectors with a full-matrix eigenbasis.
        inner: module(s) whose output is projected and passed to ``basis_opt`` (the Kronecker
            factors are updated from the incoming update).

    Example: SOAP with MARS and AMSGrad::

        opt = tz.Optimizer(model.parameters(),
                           tz.m.SOAPBasis([tz.m.MARSCorrection(0.95), tz.m.Adam(0.95, 0.95, amsgrad=True)]),
                           tz.m.LR(1e-3))
    """

    inplace = False

    def __init__(self, basis_opt: "Chainable", shampoo_beta: float | None = 0.95, precond_freq: int = 10,
                 merge_small: bool = True, max_dim: int = 4096, precondition_1d: bool = True,
                 inner: "Chainable | None" = None):
        if int(precond_freq) < 1:
            raise ValueError(f"precond_freq must be >= 1, got {precond_freq}")
        if int(max_dim) < 1:
            raise ValueError(f"max_dim must be >= 1, got {max_dim}")
        super().__init__(dict(shampoo_beta=shampoo_beta, precond_freq=int(precond_freq), merge_small=merge_small,
                              max_dim=int(max_dim), precondition_1d=precondition_1d), inner=inner)
        self.set_child(_KEY, basis_opt)

    @staticmethod
    def _layout(tensor: torch.Tensor, setting: Mapping[str, Any]):
        return kron_layout(tensor.shape, setting["merge_small"], setting["max_dim"], setting["precondition_1d"])

    @torch.no_grad()
    def multi_tensor_update(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: Any, loss: Any,
                            states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        fakes = self._fake_params.get(_KEY)
        for i, (tensor, state, setting) in enumerate(zip(tensors, states, settings)):
            perm, work, mask = self._layout(tensor, setting)
            t = to_layout(tensor, perm, work)
            beta = setting["shampoo_beta"]
            step = state.get("step", 0)
            if step == 0:
                start_bases(state, t, mask, beta)
                state["step"] = 1
                continue
            GG = state.get("GG")
            if GG is not None:
                if refresh_due(step, setting["precond_freq"]):
                    Q_old = state["Q"]
                    Q_new, orders = refresh_eigenbasis(GG, Q_old)
                    if fakes is not None and i < len(fakes):
                        reproject_buffers(self.children[_KEY], fakes[i], {
                            "grad": lambda b: project(project_back(b, Q_old), Q_new),
                            "grad_sq": lambda b: reorder(b, orders),
                        })
                    state["Q"] = Q_new
                accumulate_grams(GG, t, beta)
            state["step"] = step + 1

    def apply(self, objective: "Objective") -> "Objective":
        if all(self.state[p].get("step", 0) <= 1 for p in objective.params):
            objective.set_updates([u.clamp(-FIRST_STEP_CLIP, FIRST_STEP_CLIP) for u in objective.peek_updates()], owned=True)
            return objective
        if "inner" in self.children:
            objective = self.inner_step("inner", objective)
        return self.apply_states(objective, [], [])

    @torch.no_grad()
    def apply_states(self, objective: "Objective", states: Any, settings: Any) -> "Objective":
        params = objective.params
        states, settings = self._states_settings(params)
        updates = objective.peek_updates()
        layouts = [self._layout(u, se) for u, se in zip(updates, settings)]
        Qs = [st.get("Q") or [] for st in states]
        proj = [_project(u, perm, work, Q) for u, (perm, work, _), Q in zip(updates, layouts, Qs)]
        grads = objective.grads
        if grads is None:
            proj_grads = None
        elif grads is updates or all(g is u for g, u in zip(grads, updates)):
            proj_grads = [t.clone() for t in proj]
        else:
            proj_grads = [_project(g, perm, work, Q) for g, (perm, work, _), Q in zip(grads, layouts, Qs)]
        out = self.inner_step_tensors(_KEY, proj, clone=False, grads=proj_grads, loss=objective.loss)
        result = []
        for o, u, (perm, _, _), Q, st in zip(out, updates, layouts, Qs, states):
            if st.get("step", 0) <= 1:  # a tensor seen for the first time
                result.append(u.clamp(-FIRST_STEP_CLIP, FIRST_STEP_CLIP))
            else:
                result.append(from_layout(project_back(o, Q), perm, u.shape))
        objective.set_updates(result, owned=True)
        return objective


def _project(t: torch.Tensor, perm: list[int] | None, work: Sequence[int], Q: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """``t`` in the eigenbasis, always a new tensor (``basis_opt`` may modify it in place)."""
    if any(q is not None for q in Q):
        return project(to_layout(t, perm, work), Q)
    return to_layout(t, perm, work).clone()
