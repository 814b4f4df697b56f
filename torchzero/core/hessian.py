"""Full Hessians for :meth:`Objective.hessian` (second-order modules).

All parameters are treated as one flat vector ``x`` of size ``n``; the Hessian is an ``n x n``
matrix in that order. Methods:

* ``batched_autograd``: the gradient ``g(x)`` is computed with a graph, and all ``n`` rows of
  ``d g / d x`` come from one vectorised backward pass (``is_grads_batched``);
* ``autograd`` (and its aliases ``functional_revrev``, ``functional_fwdrev``, ``func``): the same
  exact Hessian, one row per backward pass;
* ``gfd_forward``: row ``i`` is ``(g(x + h e_i) - g(x)) / h`` (``n`` extra gradients);
* ``gfd_central``: row ``i`` is ``(g(x + h e_i) - g(x - h e_i)) / (2h)`` (``2n`` extra gradients);
* ``fd`` / ``fd_full``: gradient and Hessian from function values only, by central differences
  (``g_i = (f(x+he_i) - f(x-he_i)) / 2h``, ``H_ii = (f(x+he_i) - 2f(x) + f(x-he_i)) / h^2`` and the
  four-point formula for ``H_ij``).

Finite-difference Hessians are symmetrised (``(H + H^T) / 2``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .objective import Objective

EXACT = ("batched_autograd", "autograd", "functional_revrev", "functional_fwdrev", "func")


def _flat(ts: Any, params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([(torch.zeros_like(p) if t is None else t).reshape(-1) for t, p in zip(ts, params)])


def _unflat(v: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    return [c.view_as(p) for c, p in zip(torch.split(v, [p.numel() for p in params]), params)]


def _set_(params: list[torch.Tensor], vec: torch.Tensor) -> None:
    with torch.no_grad():
        for p, c in zip(params, _unflat(vec, params)):
            p.copy_(c)


def hessian(obj: "Objective", hessian_method: str = "batched_autograd", h: float = 1e-3,
            at_x0: bool = True) -> tuple[Any, list[torch.Tensor], torch.Tensor]:
    """Returns ``(loss, grads, H)`` at the current parameters; see the module docstring for methods.

    With ``at_x0`` the loss and gradients are cached on ``obj`` when it has none yet.
    """
    if obj.closure is None:
        raise RuntimeError("computing the Hessian needs a closure; pass one to optimizer.step(closure)")
    if hessian_method in EXACT:
        loss, grads, H = _autograd_hessian(obj, batched=hessian_method == "batched_autograd")
    elif hessian_method in ("gfd_forward", "gfd_central"):
        loss, grads, H = _gfd_hessian(obj, h, central=hessian_method == "gfd_central", at_x0=at_x0)
    elif hessian_method in ("fd", "fd_full"):
        loss, grads, H = _fd_hessian(obj, h)
    elif hessian_method == "thoad":
        raise ValueError("hessian_method='thoad' needs the thoad library, which torchzero does not use; "
                         "use 'batched_autograd' or 'autograd'")
    else:
        raise ValueError(f"unknown hessian_method {hessian_method!r}")
    if at_x0:
        if obj.loss is None:
            obj.loss = obj.loss_approx = loss
        if obj.grads is None:
            obj.grads = grads
    return loss, grads, H


def _autograd_hessian(obj: "Objective", batched: bool) -> tuple[Any, list[torch.Tensor], torch.Tensor]:
    params = obj.params
    with torch.enable_grad():
        loss = obj.closure(False)  # type: ignore[misc]
        if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
            raise RuntimeError("autograd Hessians need a closure whose loss has a graph (do not call backward in it)")
        g = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        gvec = _flat(g, params)
        n = gvec.numel()
        if not gvec.requires_grad:  # the loss is linear in the parameters
            H = torch.zeros(n, n, dtype=gvec.dtype, device=gvec.device)
        elif batched:
            eye = torch.eye(n, dtype=gvec.dtype, device=gvec.device)
            rows = torch.autograd.grad(gvec, params, grad_outputs=eye, is_grads_batched=True, allow_unused=True)
            H = torch.cat([(torch.zeros(n, *p.shape, dtype=gvec.dtype, device=gvec.device) if r is None else r).reshape(n, -1)
                           for r, p in zip(rows, params)], 1)
        else:
            H = torch.empty(n, n, dtype=gvec.dtype, device=gvec.device)
            for i in range(n):
                row = torch.autograd.grad(gvec[i], params, retain_graph=True, allow_unused=True)
                H[i] = _flat(row, params)
    grads = [gi.detach() for gi in _unflat(gvec.detach(), params)]
    return loss.detach(), grads, H.detach()


def _gfd_hessian(obj: "Objective", h: float, central: bool, at_x0: bool) -> tuple[Any, list[torch.Tensor], torch.Tensor]:
    params = obj.params
    if at_x0:
        loss, g0 = obj.get_loss_grads()
    else:
        loss, g0 = obj.get_loss_grads(at_x0=False)
    g0 = _flat(g0, params).clone()
    x0 = _flat([p.detach() for p in params], params).clone()
    n = x0.numel()
    H = torch.empty(n, n, dtype=x0.dtype, device=x0.device)
    try:
        for i in range(n):
            xp = x0.clone()
            xp[i] += h
            _set_(params, xp)
            gp = _flat(obj.get_grads(at_x0=False), params).clone()
            if central:
                xp[i] -= 2 * h
                _set_(params, xp)
                gm = _flat(obj.get_grads(at_x0=False), params)
                H[i] = (gp - gm) / (2 * h)
            else:
                H[i] = (gp - g0) / h
    finally:
        _set_(params, x0)
    H = (H + H.T) / 2
    return loss, [g.clone() for g in _unflat(g0, params)], H


def _fd_hessian(obj: "Objective", h: float) -> tuple[Any, list[torch.Tensor], torch.Tensor]:
    params = obj.params
    x0 = _flat([p.detach() for p in params], params).clone()
    n = x0.numel()

    def f(x: torch.Tensor) -> float:
        _set_(params, x)
        with torch.no_grad():
            return float(obj.closure(False))  # type: ignore[misc]

    try:
        f0 = f(x0)
        fp = torch.empty(n, dtype=x0.dtype, device=x0.device)
        fm = torch.empty_like(fp)
        for i in range(n):
            x = x0.clone(); x[i] += h; fp[i] = f(x)
            x = x0.clone(); x[i] -= h; fm[i] = f(x)
        H = torch.empty(n, n, dtype=x0.dtype, device=x0.device)
        for i in range(n):
            H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h ** 2
            for j in range(i + 1, n):
                vals = []
                for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                    x = x0.clone(); x[i] += si * h; x[j] += sj * h
                    vals.append(f(x))
                H[i, j] = H[j, i] = (vals[0] - vals[1] - vals[2] + vals[3]) / (4 * h ** 2)
    finally:
        _set_(params, x0)
    g = (fp - fm) / (2 * h)
    loss = torch.tensor(f0, dtype=x0.dtype, device=x0.device)
    return loss, [t.clone() for t in _unflat(g, params)], H
