"""Restart strategies for conjugate gradient and quasi-Newton methods."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

import torch

from ...core.chain import Chainable
from ...core.module import Module
from ...core.objective import Objective

_CHILD = "modules"


def _flat_copy(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    """``sum_i <a_i, b_i>`` over lists of tensors, as a Python float."""
    return float(sum(torch.dot(x.reshape(-1), y.reshape(-1)) for x, y in zip(a, b)))


def _reset_all(objective: Objective, modules: tuple[Module, ...]) -> None:
    for m in modules:
        m.reset()


class RestartStrategyBase(Module, ABC):
    """Base class of restart strategies.

    Every step, :meth:`should_reset` decides from the objective whether the state has to be
    cleared. With ``modules`` given, the strategy wraps them: their state is cleared *before*
    they step, and they then step normally (their output is this module's output). With
    ``modules=None`` the strategy passes the update through unchanged and, when the condition
    holds, clears the state of every module of the optimizer once the current step is complete
    (so the next step starts afresh). A restart also clears the strategy's own state.

    Subclasses implement ``should_reset(objective) -> bool``.

    Args:
        defaults: settings of the subclass.
        modules: module(s) to restart, or None for all modules of the optimizer.
    """

    def __init__(self, defaults: dict | None = None, modules: Chainable | None = None):
        super().__init__(defaults)
        if modules is not None:
            self.set_child(_CHILD, modules)

    @abstractmethod
    def should_reset(self, objective: Objective) -> bool:
        """Whether to restart at this step (may update this strategy's own state)."""

    def _setting(self, objective: Objective):
        return self.settings[objective.params[0]]

    def restart(self, objective: Objective) -> None:
        """Clears this strategy's state and restarts the target modules."""
        self.global_state.clear()
        self.state.clear()
        child = self.children.get(_CHILD)
        if child is not None:
            child.reset()
        elif _reset_all not in objective.post_step_hooks:
            objective.post_step_hooks.append(_reset_all)

    def _reset_on_condition(self, objective: Objective) -> None:
        if self.should_reset(objective):
            self.restart(objective)

    def update(self, objective: Objective) -> None:
        self._reset_on_condition(objective)
        child = self.children.get(_CHILD)
        if child is not None:
            child.update(objective)

    def apply(self, objective: Objective) -> Objective:
        child = self.children.get(_CHILD)
        if child is None:
            return objective
        return child.apply(objective)

    def step(self, objective: Objective) -> Objective:
        self._reset_on_condition(objective)
        if _CHILD not in self.children:
            return objective
        return self.inner_step(_CHILD, objective)


class RestartEvery(RestartStrategyBase):
    """Restarts every ``steps`` steps: the modules' state is cleared at steps ``steps``,
    ``2 steps``, ... (counting from 1), so their ``steps``-th step is a fresh first step.

    Args:
        modules: module(s) to restart, or None for all modules of the optimizer (cleared after
            the ``steps``-th step, see :class:`RestartStrategyBase`).
        steps: number of steps between restarts, or ``"ndim"`` for the number of variables
            (the classic restart period of conjugate gradient methods).
    """

    def __init__(self, modules: Chainable | None, steps: int | Literal["ndim"]):
        if steps != "ndim" and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ValueError(f"steps must be a positive integer or 'ndim', got {steps!r}")
        super().__init__(dict(steps=steps), modules)

    def should_reset(self, objective: Objective) -> bool:
        steps = self._setting(objective)["steps"]
        if steps == "ndim":
            steps = sum(p.numel() for p in objective.params)
        k = self.global_state.get("step", 0) + 1
        self.global_state["step"] = k
        return k % max(int(steps), 1) == 0


class RestartOnStuck(RestartStrategyBase):
    """Restarts when the parameters have not moved for ``n_tol`` steps in a row.

    A step is "stuck" when ``max_i |x_k - x_{k-1}|_i < tol``, ``x_k`` the parameters when the
    strategy runs (so the difference is the step the optimizer took last).

    Args:
        modules: module(s) to restart, or None for all modules of the optimizer.
        tol: threshold on the largest absolute parameter change (None: twice the smallest
            positive normal number of the parameters' dtype).
        n_tol: number of consecutive stuck steps that triggers a restart.
    """

    def __init__(self, modules: Chainable | None, tol: float | None = None, n_tol: int = 10):
        if n_tol < 1:
            raise ValueError(f"n_tol must be >= 1, got {n_tol}")
        super().__init__(dict(tol=tol, n_tol=n_tol), modules)

    def should_reset(self, objective: Objective) -> bool:
        setting = self._setting(objective)
        params = objective.params
        gs = self.global_state
        prev = gs.get("prev_params")
        cur = _flat_copy(params)
        gs["prev_params"] = cur
        if prev is None:
            return False
        tol = setting["tol"]
        if tol is None:
            tol = 2 * torch.finfo(cur.dtype).tiny
        stuck = cur.numel() == 0 or float((cur - prev).abs().max()) < tol
        n = gs.get("n_stuck", 0) + 1 if stuck else 0
        gs["n_stuck"] = n
        return n >= setting["n_tol"]


class PowellRestart(RestartStrategyBase):
    """Powell's two restart tests for conjugate gradient methods.

    With gradients ``g_{k-1}``, ``g_k`` and the search direction ``d_k = -u_k`` (``u_k`` the
    update, which is subtracted from the parameters):

    1. non-conjugacy: restart when ``|g_{k-1}^T g_k| >= cond1 ||g_k||^2`` (Powell uses 0.2);
    2. not effectively downhill: restart unless
       ``-(1 + cond2) ||g_k||^2 <= d_k^T g_k <= -(1 - cond2) ||g_k||^2`` (0.2 gives Powell's
       window ``[-1.2, -0.8]``).

    Test 1 runs before the wrapped modules step. Test 2 needs the new direction: when wrapping
    ``modules`` it checks their output and, if it fails, restarts them and lets them step again
    (a fresh conjugate gradient method returns the steepest-descent direction); with
    ``modules=None`` it checks the update that reaches this strategy and clears every module
    after the step. Neither test runs on the first step after a restart.

    Powell (1977), "Restart procedures for the conjugate gradient method", Mathematical
    Programming 12(1), 241-254, doi:10.1007/BF01593790.

    Args:
        modules: module(s) to restart, or None for all modules of the optimizer.
        cond1: threshold of the non-conjugacy test (None disables it).
        cond2: half-width of the descent window (None disables the test).
    """

    def __init__(self, modules: Chainable | None, cond1: float | None = 0.2, cond2: float | None = 0.2):
        super().__init__(dict(cond1=cond1, cond2=cond2), modules)

    def _direction_ok(self, u: Sequence[torch.Tensor], g: Sequence[torch.Tensor], gg: float, cond2: float) -> bool:
        dg = -_dot(u, g)
        return -(1 + cond2) * gg <= dg <= -(1 - cond2) * gg

    def should_reset(self, objective: Objective) -> bool:
        setting = self._setting(objective)
        cond1, cond2 = setting["cond1"], setting["cond2"]
        gs = self.global_state
        g = objective.get_grads()
        g_prev = gs.get("g_prev")
        g_flat = _flat_copy(g)
        gs["g_prev"] = g_flat
        gs["has_prev"] = g_prev is not None
        if g_prev is None:
            return False
        gg = float(g_flat.dot(g_flat))
        if cond1 is not None and abs(float(g_prev.dot(g_flat))) >= cond1 * gg:
            return True
        if cond2 is not None and _CHILD not in self.children:
            # the update that reaches this strategy is the new direction
            if not self._direction_ok(objective.peek_updates(), g, gg, cond2):
                return True
        return False

    def _check_output(self, objective: Objective, first) -> Objective:
        """Runs ``first`` (the wrapped modules' apply or step) and tests the direction it returns;
        on failure restarts the modules and steps them again from the saved input update."""
        cond2 = self._setting(objective)["cond2"]
        if cond2 is None or not self.global_state.get("has_prev", False):
            return first(objective)
        saved = [u.clone() for u in objective.peek_updates()]
        objective = first(objective)
        g = objective.get_grads()
        if self._direction_ok(objective.peek_updates(), g, _dot(g, g), cond2):
            return objective
        self.restart(objective)
        objective.set_updates(saved, owned=True)
        return self.inner_step(_CHILD, objective)

    def apply(self, objective: Objective) -> Objective:
        child = self.children.get(_CHILD)
        if child is None:
            return objective
        return self._check_output(objective, child.apply)

    def step(self, objective: Objective) -> Objective:
        self._reset_on_condition(objective)
        if _CHILD not in self.children:
            return objective
        return self._check_output(objective, lambda o: self.inner_step(_CHILD, o))


class BirginMartinezRestart(Module):
    """The restart test of Birgin & Martinez for (spectral) conjugate gradient methods.

    ``module`` steps first; its direction ``d = -u`` (``u`` the update it returns) is accepted
    when it makes an acute enough angle with the negative gradient,
    ``d^T g <= -cond ||d|| ||g||``. Otherwise the state of ``module`` is cleared and the step is
    the steepest-descent direction (the update is the gradient ``g``).

    Birgin & Martinez (2001), "A spectral conjugate gradient method for unconstrained
    optimization", Applied Mathematics and Optimization 43(2), 117-128, doi:10.1007/s00245-001-0003-0.

    Args:
        module: the module to restart, a conjugate gradient (or possibly quasi-Newton) method.
        cond: angle threshold; 1e-3 is the value Birgin and Martinez suggest.
    """

    def __init__(self, module: Chainable, cond: float = 1e-3):
        super().__init__(dict(cond=cond))
        self.set_child("module", module)

    def update(self, objective: Objective) -> None:
        self.children["module"].update(objective)

    def apply(self, objective: Objective) -> Objective:
        return self._check(self.children["module"].apply(objective))

    def step(self, objective: Objective) -> Objective:
        return self._check(self.inner_step("module", objective))

    def _check(self, objective: Objective) -> Objective:
        cond = self.settings[objective.params[0]]["cond"]
        u = objective.peek_updates()
        g = objective.get_grads()
        dg = -_dot(u, g)
        dn = sum(float(torch.linalg.vector_norm(t)) ** 2 for t in u) ** 0.5
        gn = sum(float(torch.linalg.vector_norm(t)) ** 2 for t in g) ** 0.5
        if dg > -cond * dn * gn:
            self.children["module"].reset()
            objective.set_updates([t.clone() for t in g], owned=True)
        return objective
