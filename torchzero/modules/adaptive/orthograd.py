"""OrthoGrad."""
from __future__ import annotations

import torch

from ...core.transform import TensorTransform


class OrthoGrad(TensorTransform):
    """Projects the update of each tensor onto the orthogonal complement of its weights (⟂Grad).

    With the weights ``w`` and the update ``g`` of all parameters as one vector::

        g_perp = g - (w . g) / (w . w + eps) * w
        update = g_perp * ||g|| / ||g_perp||      (renormalize=True; else update = g_perp)

    Removing the component along ``w`` stops updates that only scale the weights up (the
    "naive loss minimization" direction).

    Prieto, Barsbey, Mediano & Birdal, 2025, "Grokking at the Edge of Numerical Stability",
    arXiv:2501.04697.

    Args:
        eps: added to the denominator of the projection coefficient.
        renormalize: rescale the projected update to the norm of the original one.
    """

    def __init__(self, eps: float = 1e-8, renormalize=True):
        super().__init__(dict(eps=eps, renormalize=renormalize), uses_grad=False)

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings):
        s = settings[0]
        eps = s["eps"]
        ws = [w.detach() for w in params]
        wg = sum(torch.dot(w.reshape(-1), t.reshape(-1)) for w, t in zip(ws, tensors))
        ww = sum(torch.dot(w.reshape(-1), w.reshape(-1)) for w in ws)
        proj = wg / (ww + eps)
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors))) if s["renormalize"] else None
        torch._foreach_sub_(tensors, torch._foreach_mul(ws, proj))
        if norm is not None:
            new = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))
            torch._foreach_mul_(tensors, torch.where(new > 0, norm / new, torch.zeros_like(new)))
        return tensors
