"""Meta-modules that take several inner steps, re-evaluate the objective, or use mini-batches."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from ...core.module import Module
from ...core.objective import Objective


def _fresh(objective: Objective) -> Objective:
    """A copy of ``objective`` at the current parameter values, with nothing evaluated yet."""
    c = objective.clone(clone_updates=False)
    c.loss = c.loss_approx = None
    c.grads = None
    c.updates = None
    c.stop = False
    c.skip_update = False
    return c


def _inner_loop(objective: Objective, modules: Sequence[Module], steps: int) -> Objective:
    """Steps ``modules`` one after another ``steps`` times, moving the parameters after each one;
    the update becomes the total displacement and the parameters are restored."""
    params = objective.params
    x0 = [p.detach().clone() for p in params]
    first = True
    for _ in range(steps):
        for m in modules:
            if first:
                child = objective.clone(clone_updates=False)
                child._updates_owned = objective._updates_owned
                first = False
                child = m.step(child)
                objective.update_attrs_from_clone_(child)
            else:
                child = m.step(_fresh(objective))
            child.update_parameters()
    with torch.no_grad():
        disp = torch._foreach_sub(x0, [p.detach() for p in params])
        torch._foreach_copy_(params, x0)
    objective.set_updates(disp, owned=True)
    return objective


class Multistep(Module):
    """Takes ``steps`` inner steps with ``module`` per step; the update is the total displacement
    ``x_0 - x_steps`` and the parameters are restored before it is applied.

    Every inner step after the first re-evaluates the gradient, so ``steps > 1`` needs a closure.

    Args:
        module: the module(s) of one inner step.
        steps: number of inner steps.
    """

    def __init__(self, module: Module | Sequence[Module], steps: int):
        if int(steps) < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        super().__init__()
        self.set_child("module", module)
        self._steps = int(steps)

    def apply(self, objective: Objective) -> Objective:
        return _inner_loop(objective, [self.children["module"]], self._steps)


class Sequential(Module):
    """Steps with each of ``modules`` in turn (moving the parameters after each), ``steps`` times;
    the update is the total displacement and the parameters are restored before it is applied.

    Args:
        modules: the modules (each may be a list, which is chained).
        steps: number of passes over ``modules``.
    """

    def __init__(self, modules: Iterable[Module | Sequence[Module]], steps: int = 1):
        if int(steps) < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        super().__init__()
        self.set_children_sequence(list(modules))
        self._steps = int(steps)

    def apply(self, objective: Objective) -> Objective:
        return _inner_loop(objective, self.get_children_sequence(), self._steps)


class NegateOnLossIncrease(Module):
    """Evaluates the loss at ``x - update``; if it is higher than at ``x``, the update is set to zero
    (or negated with ``backtrack=True``). Needs a closure (one extra evaluation per step).

    Args:
        backtrack: negate the update instead of zeroing it.
    """

    def __init__(self, backtrack=False):
        super().__init__(dict(backtrack=backtrack))

    def apply(self, objective: Objective) -> Objective:
        params = objective.params
        update = objective.get_updates()
        from .misc import loss_for
        f0 = loss_for(objective)
        x0 = [p.detach().clone() for p in params]
        with torch.no_grad():
            torch._foreach_sub_(params, update)
        try:
            f1 = objective.get_loss(False, at_x0=False)
        finally:
            with torch.no_grad():
                torch._foreach_copy_(params, x0)
        from .misc import _float
        if _float(f1) > _float(f0):
            if self.settings[params[0]]["backtrack"]:
                torch._foreach_neg_(update)
            else:
                torch._foreach_zero_(update)
        return objective


class Online(Module):
    """Lets modules that compare consecutive points (quasi-Newton pairs, previous gradients...) work
    with mini-batches.

    With a new mini-batch at every step, a difference like ``g_t(x_t) - g_{t-1}(x_{t-1})`` mixes
    two batches. At each step ``Online`` therefore calls ``module.reset_for_online()``, evaluates the
    closure (this step's batch) at the previous parameters and calls ``module.update`` there, then
    calls ``update`` and ``apply`` at the current parameters. Every pair the module forms is then
    made on one batch (Schraudolph, Yu & Günter, 2007, "A Stochastic Quasi-Newton Method for Online
    Convex Optimization", AISTATS). Costs one extra evaluation per step and needs a closure.

    Args:
        module: the module(s) to run online.
    """

    def __init__(self, module: Module):
        super().__init__()
        self.set_child("module", module)

    def apply(self, objective: Objective) -> Objective:
        if objective.closure is None:
            raise RuntimeError("Online needs a closure to re-evaluate the previous point; pass one to optimizer.step(closure)")
        module = self.children["module"]
        params = objective.params
        prev = [self.state[p].get("prev_params") for p in params]
        x_cur = [p.detach().clone() for p in params]
        if all(x is not None for x in prev):
            module.reset_for_online()
            with torch.no_grad():
                torch._foreach_copy_(params, prev)
            try:
                at_prev = _fresh(objective)
                at_prev.get_grads()
                module.update(at_prev)
            finally:
                with torch.no_grad():
                    torch._foreach_copy_(params, x_cur)
        child = objective.clone(clone_updates=False)
        child._updates_owned = objective._updates_owned
        module.update(child)
        child = module.apply(child)
        objective.update_attrs_from_clone_(child)
        objective.set_updates(child.updates, owned=child._updates_owned)
        objective.skip_update = child.skip_update
        for p, x in zip(params, x_cur):
            self.state[p]["prev_params"] = x
        return objective

    def get_H(self, objective: Objective | None = None):
        return self.children["module"].get_H(objective)

