"""Nonlinear conjugate gradient methods.

Notation: ``g_k`` is the gradient (the update this module receives), ``y_k = g_k - g_{k-1}``,
``d_k`` the search direction. The module returns the update ``u_k = -d_k`` (the optimizer
subtracts it), with

    d_0 = -g_0,    d_k = -g_k + beta_k d_{k-1},

and the methods differ only in ``beta_k``. The formulas are those of the survey of Hager & Zhang
(2006), "A survey of nonlinear conjugate gradient methods", Pacific Journal of Optimization 2(1),
35-58. With an exact line search on a quadratic all of them reduce to linear conjugate gradient
and reach the minimum of an ``n``-dimensional quadratic in at most ``n`` steps. They produce a
direction, not a step length: follow them with a line search such as
``tz.m.StrongWolfe(c2=0.1, a_init="first-order")``.
"""
from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import Literal

import torch

from ...core.chain import Chainable
from ...core.transform import TensorTransform
from ..quasi_newton.base import HessianUpdateStrategy, rank1_denominator_ok


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    """``sum_i <a_i, b_i>`` as a Python float (one synchronisation)."""
    if len(a) == 1:
        return float(torch.dot(a[0].reshape(-1), b[0].reshape(-1)))
    return float(torch.stack([torch.dot(x.reshape(-1), y.reshape(-1)) for x, y in zip(a, b)]).sum())


class _Vectors:
    """Lazily computed dot products of the current gradient ``g``, the previous gradient ``gp`` and
    the previous update ``up`` (``= -d_{k-1}``), shared by the ``beta`` formulas."""

    def __init__(self, g: list[torch.Tensor], gp: list[torch.Tensor], up: list[torch.Tensor]):
        self.g, self.gp, self.up = g, gp, up
        self._y: list[torch.Tensor] | None = None
        self._cache: dict[str, float] = {}

    @property
    def y(self) -> list[torch.Tensor]:
        if self._y is None:
            self._y = torch._foreach_sub(self.g, self.gp)
        return self._y

    def _get(self, key: str, a, b) -> float:
        v = self._cache.get(key)
        if v is None:
            v = self._cache[key] = _dot(a(), b())
        return v

    # products named after their factors; ``d`` products are expressed through ``up = -d``
    def gg(self) -> float: return self._get("gg", lambda: self.g, lambda: self.g)
    def gpgp(self) -> float: return self._get("gpgp", lambda: self.gp, lambda: self.gp)
    def gy(self) -> float: return self._get("gy", lambda: self.g, lambda: self.y)
    def yy(self) -> float: return self._get("yy", lambda: self.y, lambda: self.y)
    def dy(self) -> float: return -self._get("uy", lambda: self.up, lambda: self.y)
    def dgp(self) -> float: return -self._get("ugp", lambda: self.up, lambda: self.gp)
    def dg(self) -> float: return -self._get("ug", lambda: self.up, lambda: self.g)


def _ratio(num: float, den: float) -> float:
    if den == 0 or not math.isfinite(den) or not math.isfinite(num):
        return 0.0
    return num / den


class ConjugateGradientBase(TensorTransform):
    """Base class of the nonlinear conjugate gradient methods.

    Subclasses implement :meth:`get_beta`. Each step the module computes ``beta_k`` from the new
    gradient ``g_k`` (the update it receives), the previous one and the previous direction, then
    returns ``u_k = h_k + beta_k u_{k-1}`` (``u = -d``), where ``h_k`` is ``g_k`` after ``inner``.
    ``beta`` is 0 on the first step, every ``restart_interval`` steps (``"auto"``: the number of
    variables plus one; None: never) and when its denominator vanishes. With ``clip_beta``,
    ``beta <- max(beta, 0)`` (e.g. PRP+, Gilbert & Nocedal, 1992, "Global convergence properties
    of conjugate gradient methods for optimization", SIAM J. Optim. 2(1), 21-42).

    Args:
        defaults: settings of the subclass.
        clip_beta: clip negative ``beta`` to zero.
        restart_interval: restart (``beta = 0``) every this many steps.
        inner: module(s) applied to the gradient before it is combined with the previous direction.
    """

    inplace = False

    def __init__(self, defaults: dict | None = None, clip_beta: bool = False,
                 restart_interval: int | None | Literal["auto"] = "auto", inner: Chainable | None = None):
        if restart_interval is not None and restart_interval != "auto" and (
                isinstance(restart_interval, bool) or int(restart_interval) < 1):
            raise ValueError(f"restart_interval must be a positive integer, 'auto' or None, got {restart_interval!r}")
        d = dict(clip_beta=clip_beta, restart_interval=restart_interval)
        if defaults is not None:
            d.update(defaults)
        super().__init__(d, inner=inner)

    @abstractmethod
    def get_beta(self, v: _Vectors) -> float:
        """``beta_k`` from the dot products in ``v`` (see :class:`_Vectors`)."""

    def multi_tensor_update(self, tensors, params, grads, loss, states, settings) -> None:
        gs = self.global_state
        setting = settings[0]
        k = gs.get("step", 0)
        gs["step"] = k + 1
        interval = setting["restart_interval"]
        if interval == "auto":
            interval = sum(t.numel() for t in tensors) + 1
        g_prev = [st.get("g_prev") for st in states]
        d_prev = [st.get("u_prev") for st in states]
        restart = (any(x is None for x in g_prev) or any(x is None for x in d_prev)
                   or (interval is not None and k % int(interval) == 0))
        beta = 0.0
        if not restart:
            beta = float(self.get_beta(_Vectors(list(tensors), g_prev, d_prev)))  # type: ignore[arg-type]
            if not math.isfinite(beta):
                beta = 0.0
            if setting["clip_beta"] and beta < 0:
                beta = 0.0
        gs["beta"] = beta
        gs["restart"] = restart
        for t, st in zip(tensors, states):
            buf = st.get("g_prev")
            if buf is None or buf.shape != t.shape:
                st["g_prev"] = t.detach().clone()
            else:
                buf.copy_(t)

    def multi_tensor_apply(self, tensors, params, grads, loss, states, settings) -> Sequence[torch.Tensor]:
        gs = self.global_state
        beta = gs.get("beta", 0.0)
        restart = gs.get("restart", True)
        u_prev = [st.get("u_prev") for st in states]
        if restart or beta == 0 or any(x is None for x in u_prev):
            out = [t.clone() for t in tensors]
        else:
            out = torch._foreach_add(tensors, u_prev, alpha=beta)  # type: ignore[arg-type]
        for o, st in zip(out, states):
            buf = st.get("u_prev")
            if buf is None or buf.shape != o.shape:
                st["u_prev"] = o.clone()
            else:
                buf.copy_(o)
        return out

    def reset_for_online(self) -> None:
        super().reset_for_online()
        self.state.clear()
        self.global_state.pop("step", None)


def _cg_init(self, clip_beta, restart_interval, inner) -> None:
    ConjugateGradientBase.__init__(self, None, clip_beta=clip_beta, restart_interval=restart_interval, inner=inner)


class PolakRibiere(ConjugateGradientBase):
    """Polak-Ribiere-Polyak conjugate gradient: ``beta = g_k^T y_k / ||g_{k-1}||^2``.

    With ``clip_beta`` (the default) this is PRP+ (``beta = max(beta, 0)``), which restarts on
    its own when the gradients stop being orthogonal. Polak & Ribiere (1969), "Note sur la
    convergence de methodes de directions conjuguees", ESAIM M2AN 3(R1), 35-43; Polyak (1969),
    "The conjugate gradient method in extremal problems", USSR Comp. Math. Math. Phys. 9(4), 94-112.

    Put a line search after it, e.g. ``tz.m.StrongWolfe(c2=0.1, a_init="first-order")``.
    """

    def __init__(self, clip_beta=True, restart_interval: int | None | Literal["auto"] = "auto",
                 inner: Chainable | None = None):
        _cg_init(self, clip_beta, restart_interval, inner)

    def get_beta(self, v):
        return _ratio(v.gy(), v.gpgp())


class FletcherReeves(ConjugateGradientBase):
    """Fletcher-Reeves conjugate gradient: ``beta = ||g_k||^2 / ||g_{k-1}||^2``.

    Fletcher & Reeves (1964), "Function minimization by conjugate gradients", The Computer
    Journal 7(2), 149-154, doi:10.1093/comjnl/7.2.149. Put a line search after it, e.g.
    ``tz.m.StrongWolfe(c2=0.1, a_init="first-order")``.
    """

    def __init__(self, restart_interval: int | None | Literal["auto"] = "auto", clip_beta=False,
                 inner: Chainable | None = None):
        _cg_init(self, clip_beta, restart_interval, inner)

    def get_beta(self, v):
        return _ratio(v.gg(), v.gpgp())


class HestenesStiefel(ConjugateGradientBase):
    """Hestenes-Stiefel conjugate gradient: ``beta = g_k^T y_k / (d_{k-1}^T y_k)``.

    Hestenes & Stiefel (1952), "Methods of conjugate gradients for solving linear systems",
    J. Res. Nat. Bur. Standards 49(6), 409-436. Put a line search after it, e.g.
    ``tz.m.StrongWolfe(c2=0.1, a_init="first-order")``.
    """

    def __init__(self, restart_interval: int | None | Literal["auto"] = "auto", clip_beta=False,
                 inner: Chainable | None = None):
        _cg_init(self, clip_beta, restart_interval, inner)

    def get_beta(self, v):
        return _ratio(v.gy(), v.dy())


class DaiYuan(ConjugateGradientBase):
    """Dai-Yuan conjugate gradient: ``beta = ||g_k||^2 / (d_{k-1}^T y_k)``.

    Dai & Yuan (1999), "A nonlinear conjugate gradient method with a strong global convergence
    property", SIAM J. Optim. 10(1), 177-182, doi:10.1137/S1052623497318992. Put a line search
    after it, e.g. ``tz.m.StrongWolfe(c2=0.1)``.
    """

    def __init__(self, restart_interval: int | None | Literal["auto"] = "auto", clip_beta=False,
                 inner: Chainable | None = None):
        _cg_init(self, clip_beta, restart_interval, inner)

    def get_beta(self, v):
        return _ratio(v.gg(), v.dy())


class LiuStorey(ConjugateGradientBase):
    """Liu-Storey conjugate gradient: ``beta = -g_k^T y_k / (d_{k-1}^T g_{k-1})``.

    Liu & Storey (1991), "Efficient generalized conjugate gradient algorithms, part 1: theory",
    J. Optim. Theory Appl. 69(1), 129-137, doi:10.1007/BF00940464. Put a line search after it,
    e.g. ``tz.m.StrongWolfe(c2=0.1, a_init="first-order")``.
    """

    def __init__(self, restart_interval: int | None | Literal["auto"] = "auto", clip_beta=False,
                 inner: Chainable | None = None):
        _cg_init(self, clip_beta, restart_interval, inner)

    def get_beta(self, v):
        return _ratio(-v.gy(), v.dgp())


class ConjugateDescent(ConjugateGradientBase):
    """Fletcher's conjugate descent: ``beta = -||g_k||^2 / (d_{k-1}^T g_{k-1})``.

    Fletcher (1987), "Practical Methods of Optimization", vol. 1, 2nd ed., Wiley. Put a line
    search after it, e.g. ``tz.m.StrongWolfe(c2=0.1, a_init="first-order")``.
    """

    def __init__(self, restart_interval: int | None | Literal["auto"] = "auto", clip_beta=False,
                 inner: Chainable | None = None):
        _cg_init(self, clip_beta, restart_interval, inner)

    def get_beta(self, v):
        return _ratio(-v.gg(), v.dgp())


class HagerZhang(ConjugateGradientBase):
    """Hager-Zhang (CG_DESCENT) conjugate gradient:
    ``beta = (y_k - 2 d_{k-1} ||y_k||^2 / (d_{k-1}^T y_k))^T g_k / (d_{k-1}^T y_k)``.

    Hager & Zhang (2005), "A new conjugate gradient method with guaranteed descent and an
    efficient line search", SIAM J. Optim. 16(1), 170-192, doi:10.1137/030601880. Put a line
    search after it, e.g. ``tz.m.StrongWolfe(c2=0.1, a_init="first-order")``.
    """

    def __init__(self, restart_interval: int | None | Literal["auto"] = "auto", clip_beta=False,
                 inner: Chainable | None = None):
        _cg_init(self, clip_beta, restart_interval, inner)

    def get_beta(self, v):
        dy = v.dy()
        if dy == 0:
            return 0.0
        return (v.gy() - 2 * v.dg() * v.yy() / dy) / dy


class DYHS(ConjugateGradientBase):
    """Hybrid of Dai-Yuan and Hestenes-Stiefel: ``beta = max(0, min(beta_HS, beta_DY))``.

    Dai & Yuan (2001), "An efficient hybrid conjugate gradient method for unconstrained
    optimization", Annals of Operations Research 103, 33-47, doi:10.1023/A:1012930416777. Put a
    line search after it, e.g. ``tz.m.StrongWolfe(c2=0.1, a_init="first-order")``.
    """

    def __init__(self, restart_interval: int | None | Literal["auto"] = "auto", clip_beta=False,
                 inner: Chainable | None = None):
        _cg_init(self, clip_beta, restart_interval, inner)

    def get_beta(self, v):
        dy = v.dy()
        return max(0.0, min(_ratio(v.gy(), dy), _ratio(v.gg(), dy)))


class ProjectedGradientMethod(HessianUpdateStrategy):
    """Pearson's projected gradient method (Algorithm 5 of Pearson, 1969).

    Keeps a matrix ``H`` (starting from ``I / init_scale``) that projects the gradient onto the
    subspace conjugate to the previous directions::

        H+ = H - (H y) (H y)^T / (y^T H y),        d = -H g,

    so that on a quadratic each new direction is conjugate to all earlier ones. ``H`` loses one
    rank per update, hence the restart to ``I`` every ``restart_interval`` updates (``"auto"``: the
    number of variables plus one). Uses ``n^2`` memory; this is not projected gradient *descent*
    (for constraints). Put a line search after it, e.g. ``tz.m.StrongWolfe(c2=0.1, a_init="first-order")``.

    Pearson (1969), "Variable metric methods of minimisation", The Computer Journal 12(2),
    171-178, doi:10.1093/comjnl/12.2.171.

    Args: see :class:`~torchzero.modules.quasi_newton.base.HessianUpdateStrategy`.
    """

    def __init__(self, init_scale: float | Literal["auto"] = 1, tol: float = 1e-32, ptol: float | None = 1e-32,
                 ptol_restart: bool = False, gtol: float | None = 1e-32,
                 restart_interval: int | None | Literal["auto"] = "auto", beta: float | None = None,
                 update_freq: int = 1, scale_first: bool = False, concat_params: bool = True,
                 inner: Chainable | None = None):
        super().__init__(None, init_scale=init_scale, tol=tol, ptol=ptol, ptol_restart=ptol_restart, gtol=gtol,
                         restart_interval=restart_interval, beta=beta, update_freq=update_freq,
                         scale_first=scale_first, concat_params=concat_params, inverse=True, inner=inner)

    def update_H(self, H, s, y, p, g, p_prev, g_prev, state, setting):
        Hy = H @ y
        yHy = float(y.dot(Hy))
        if not rank1_denominator_ok(y, Hy, yHy, setting["tol"]):
            return H
        return H.addr_(Hy, Hy, alpha=-1 / yHy)
