"""Hessian-free (truncated) Newton methods: Krylov solves with Hessian-vector products."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from ...core.chain import Chainable
from ...core.objective import Objective
from ...core.transform import Transform
from ...utils.params import tensors_to_vec, vec_to_tensors
from ._krylov import cg, minres, steihaug_cg, steihaug_from_path

HVPMethod = Literal["batched_autograd", "autograd", "fd_forward", "fd_central"]


def _check(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def hvp_operator(objective: Objective, hvp_method: str, h: float):
    """``matvec(v) = H v`` at the current parameters on flat vectors.

    For autograd products the gradient with its graph is computed before the first product and
    cached on the objective (with the loss) so the update is read without a second evaluation.
    """
    params = objective.params
    box: dict[str, Any] = {}

    def graph_grad() -> list[torch.Tensor]:
        if objective.closure is None:
            raise RuntimeError("Hessian-vector products need a closure; pass one to optimizer.step(closure)")
        with torch.enable_grad():
            loss = objective.closure(False)
            if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
                raise RuntimeError("autograd Hessian-vector products need a closure whose loss has a graph "
                                   "(the closure must accept backward and not call it when backward=False)")
            g = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        rgrad = [torch.zeros_like(p) if gi is None else gi for p, gi in zip(params, g)]
        if objective.loss is None:
            objective.loss = objective.loss_approx = loss.detach()
        if objective.grads is None:
            objective.grads = [gi.detach() for gi in rgrad]
        # the graph is invalid once the parameters are written to (e.g. to evaluate a trial point)
        box["versions"] = [p._version for p in params]
        return rgrad

    autograd = hvp_method in ("autograd", "batched_autograd")
    if autograd:
        box["rgrad"] = graph_grad()
    else:
        _check("hvp_method", hvp_method, ("autograd", "batched_autograd", "fd_forward", "fd_central"))
        box["rgrad"] = [gi.clone() for gi in objective.get_grads()] if hvp_method == "fd_forward" else None

    def matvec(v: torch.Tensor) -> torch.Tensor:
        if autograd and box["versions"] != [p._version for p in params]:
            box["rgrad"] = graph_grad()
        hz, box["rgrad"] = objective.hessian_vector_product(vec_to_tensors(v, params), box["rgrad"], True,
                                                             hvp_method, h, retain_graph=True)  # type: ignore[arg-type]
        return tensors_to_vec(hz)

    return matvec


class NewtonCG(Transform):
    """Newton's method with a matrix-free Krylov solver (Hessian-free / truncated Newton).

    Each step solves ``(H + reg I) d = u`` for the update ``d``, where ``u`` is the gradient (or the
    output of ``inner``) and ``H`` is available only through Hessian-vector products ``H v``
    (:meth:`Objective.hessian_vector_product`: exact by autograd, or gradient finite differences
    ``(g(x + h v/|v|) - g(x)) |v| / h`` and the central variant). The solver is conjugate gradient
    (``solver="cg"``, for positive definite ``H``) or MINRES (``solver="minres"``, symmetric
    indefinite ``H``); it stops when the residual ``||u - (H + reg I) d|| <= tol`` (tested from
    iteration ``miniter + 1`` on) or after ``maxiter`` iterations (the dimension by default, where CG
    is exact in exact arithmetic). A small ``maxiter`` gives a truncated Newton method. With
    ``npc_terminate`` CG stops on the first direction of non-positive curvature ``p^T H p <= 0``
    (returning ``u`` itself if that is the first direction); otherwise it carries on, so on an
    indefinite Hessian the result is the Newton step to the saddle of the model, as with
    :class:`Newton` (pair it with a line search or use :class:`NewtonCGSteihaug`).

    With ``warm_start`` the solver starts from the previous solution (times ``1 - warm_beta`` mixed
    with zero; ``warm_beta=0`` uses it as is).

    References: Dembo & Steihaug (1983), "Truncated-Newton algorithms for large-scale unconstrained
    optimization", Math. Programming 26(2); Martens (2010), "Deep learning via Hessian-free
    optimization", ICML; Nocedal & Wright (2006), "Numerical Optimization", 2nd ed., chapter 7.1.

    Args:
        maxiter: maximum solver iterations (default: number of parameters).
        tol: residual tolerance (absolute, as in the reference implementation).
        reg: ``reg`` added to the Hessian diagonal.
        hvp_method: ``"autograd"`` (``"batched_autograd"`` is the same here), ``"fd_forward"`` or ``"fd_central"``.
        solver: ``"cg"`` or ``"minres"``.
        npc_terminate: stop the solver on non-positive curvature.
        h: finite-difference step.
        miniter: minimum solver iterations.
        warm_start: start the solver from the previous step's solution.
        warm_beta: the warm start is ``(1 - warm_beta) * previous``.
        inner: modules whose output is preconditioned.
    """

    def __init__(self, maxiter: int | None = None, tol: float = 1e-8, reg: float = 1e-8,
                 hvp_method: HVPMethod = "autograd", solver: Literal["cg", "minres"] = "cg",
                 npc_terminate: bool = False, h: float = 1e-3, miniter: int = 1, warm_start=False,
                 warm_beta: float = 0, inner: Chainable | None = None):
        _check("hvp_method", hvp_method, ("batched_autograd", "autograd", "fd_forward", "fd_central"))
        _check("solver", solver, ("cg", "minres"))
        if maxiter is not None and maxiter < 0:
            raise ValueError(f"maxiter must be >= 0, got {maxiter}")
        defaults = dict(maxiter=maxiter, tol=tol, reg=reg, hvp_method=hvp_method, solver=solver,
                        npc_terminate=npc_terminate, h=h, miniter=miniter, warm_start=warm_start, warm_beta=warm_beta)
        super().__init__(defaults, inner=inner)

    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        s = settings[0]
        matvec = hvp_operator(objective, s["hvp_method"], s["h"])
        b = tensors_to_vec(objective.peek_updates())
        x0 = None
        if s["warm_start"] and "x_prev" in self.global_state:
            prev = self.global_state["x_prev"]
            if prev.shape == b.shape:
                x0 = prev * (1 - s["warm_beta"]) if s["warm_beta"] != 0 else prev
        solve = cg if s["solver"] == "cg" else minres
        d = solve(matvec, b, x0=x0, tol=s["tol"], maxiter=s["maxiter"], miniter=s["miniter"], reg=s["reg"],
                  npc_terminate=s["npc_terminate"])
        if s["warm_start"]:
            self.global_state["x_prev"] = d.clone()
        objective.set_updates(vec_to_tensors(d, objective.params), owned=True)
        return objective


class NewtonCGSteihaug(Transform):
    """Trust-region Newton-CG with the Steihaug-Toint truncated conjugate gradient.

    Each step approximately minimises the quadratic model ``m(d) = -u^T d + d^T (H + reg I) d / 2``
    (``u`` the gradient or ``inner``'s output; the parameters move by ``-d``) inside the ball
    ``||d|| <= radius`` by CG with Hessian-vector products that stops on the boundary or on negative
    curvature (:func:`steihaug_cg`). The step is accepted when the ratio of actual to predicted
    reduction ``rho = (f(x) - f(x - d)) / (m(0) - m(d))`` exceeds ``eta``; otherwise the radius is
    multiplied by ``nminus`` and the subproblem re-solved (from the stored CG path while it lasts,
    up to ``max_history`` iterates, without new products), at most ``max_attempts`` times, after which
    the update is zero. ``rho < rho_bad`` shrinks the radius by ``nminus``; ``rho > rho_good`` with
    ``||d|| >= (1 - boundary_tol) radius`` grows it by ``nplus``. With ``adapt_tol`` the CG tolerance
    is divided by 10 whenever the radius underflows (the radius then restarts at ``init``).

    References: Steihaug (1983), "The conjugate gradient method and trust regions in large scale
    optimization", SIAM J. Numer. Anal. 20(3); Nocedal & Wright (2006), "Numerical Optimization",
    2nd ed., algorithms 4.1 and 7.2.

    Args:
        eta: acceptance threshold on ``rho``.
        nplus: radius growth factor.
        nminus: radius shrink factor.
        rho_good: ``rho`` above which the radius grows (if the step reached the boundary).
        rho_bad: ``rho`` below which the radius shrinks.
        init: initial radius.
        max_attempts: maximum radius reductions per step.
        max_history: CG iterates kept for re-solving after a reduction.
        boundary_tol: relative distance to the boundary that counts as on it.
        maxiter: maximum CG iterations (default: number of parameters).
        miniter: minimum CG iterations.
        tol: absolute residual tolerance of CG.
        reg: ``reg`` added to the Hessian diagonal.
        solver: ``"cg"`` (Steihaug's method) or ``"minres"`` (MINRES solution scaled into the ball).
        adapt_tol: reduce ``tol`` when the radius underflows.
        terminate_on_tr: stop CG on the boundary (Steihaug); otherwise solve fully and scale into the ball.
        npc_terminate: stop CG at the current iterate on negative curvature instead of going to the boundary.
        hvp_method: ``"fd_forward"``, ``"fd_central"`` (or ``"autograd"``).
        h: finite-difference step.
        inner: modules whose output is preconditioned.
    """

    def __init__(self, eta: float = 0.0, nplus: float = 3.5, nminus: float = 0.25, rho_good: float = 0.99,
                 rho_bad: float = 1e-4, init: float = 1, max_attempts: int = 100, max_history: int = 100,
                 boundary_tol: float = 1e-6, maxiter: int | None = None, miniter: int = 1, tol: float = 1e-8,
                 reg: float = 1e-8, solver: Literal["cg", "minres"] = "cg", adapt_tol: bool = False,
                 terminate_on_tr: bool = True, npc_terminate: bool = False,
                 hvp_method: Literal["fd_forward", "fd_central"] = "fd_central", h: float = 1e-3,
                 inner: Chainable | None = None):
        _check("hvp_method", hvp_method, ("batched_autograd", "autograd", "fd_forward", "fd_central"))
        _check("solver", solver, ("cg", "minres"))
        if init <= 0:
            raise ValueError(f"init must be positive, got {init}")
        if not 0 < nminus < 1:
            raise ValueError(f"nminus must be in (0, 1), got {nminus}")
        defaults = dict(eta=eta, nplus=nplus, nminus=nminus, rho_good=rho_good, rho_bad=rho_bad, init=init,
                        max_attempts=max_attempts, max_history=max_history, boundary_tol=boundary_tol,
                        maxiter=maxiter, miniter=miniter, tol=tol, reg=reg, solver=solver, adapt_tol=adapt_tol,
                        terminate_on_tr=terminate_on_tr, npc_terminate=npc_terminate, hvp_method=hvp_method, h=h)
        super().__init__(defaults, inner=inner, uses_loss=True)

    def _solve(self, matvec, b: torch.Tensor, radius: float, s: Mapping[str, Any], tol: float, path):
        if s["solver"] == "minres":
            x = minres(matvec, b, tol=tol / max(float(torch.linalg.vector_norm(b)), 1e-300), maxiter=s["maxiter"],
                       miniter=s["miniter"], reg=s["reg"], npc_terminate=s["npc_terminate"])
            nrm = float(torch.linalg.vector_norm(x))
            if nrm > radius:
                x = x * (radius / nrm)
            return x, None, None
        if path is not None:
            sol = steihaug_from_path(path, radius)
            if sol is not None:
                return sol[0], sol[1], path
        d, r, path = steihaug_cg(matvec, b, radius, tol=tol, maxiter=s["maxiter"], miniter=s["miniter"], reg=s["reg"],
                                 npc_terminate=s["npc_terminate"], terminate_on_tr=s["terminate_on_tr"],
                                 max_history=s["max_history"])
        return d, r, path

    def apply_states(self, objective: Objective, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Objective:
        s = settings[0]
        gs = self.global_state
        params = objective.params
        matvec = hvp_operator(objective, s["hvp_method"], s["h"])
        b = tensors_to_vec(objective.peek_updates())
        f0 = _float(objective.get_loss(False))
        radius = float(gs.get("radius", s["init"]))
        tol = float(gs.get("tol", s["tol"]))
        tiny = torch.finfo(b.dtype).tiny
        x0 = [p.detach().clone() for p in params]
        path = None
        d = torch.zeros_like(b)
        accepted = False
        for _ in range(int(s["max_attempts"]) + 1):
            d, r, path = self._solve(matvec, b, radius, s, tol, path)
            if r is None:  # minres: the model value needs one product
                r = b - (matvec(d) + s["reg"] * d)
            pred = 0.5 * float(_dot(b, d) + _dot(r, d))
            with torch.no_grad():
                torch._foreach_sub_(params, vec_to_tensors(d, params))
            with torch.no_grad():
                f1 = _float(objective.get_loss(False, at_x0=False))
            with torch.no_grad():
                for p, x in zip(params, x0):
                    p.copy_(x)
            rho = (f0 - f1) / pred if pred > 0 else (float("-inf") if f1 >= f0 else float("inf"))
            if not rho == rho:  # nan
                rho = float("-inf")
            dnorm = float(torch.linalg.vector_norm(d))
            if rho < s["rho_bad"] or rho <= s["eta"]:
                radius = s["nminus"] * min(radius, dnorm)
            elif rho > s["rho_good"] and dnorm >= (1 - s["boundary_tol"]) * radius:
                radius *= s["nplus"]
            if radius < tiny:
                radius = float(s["init"])
                if s["adapt_tol"]:
                    tol *= 0.1
                path = None
            if rho > s["eta"]:
                accepted = True
                break
        gs["radius"] = radius
        gs["tol"] = tol
        if not accepted:
            d = torch.zeros_like(b)
        objective.set_updates(vec_to_tensors(d, params), owned=True)
        return objective


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.dot(a, b)


def _float(x: Any) -> float:
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)
