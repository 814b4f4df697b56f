"""Any ``torch.optim`` optimizer as a module."""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from ...core.module import Module
from ...core.objective import Objective


def _needs_closure(opt: torch.optim.Optimizer) -> bool:
    try:
        param = inspect.signature(opt.step).parameters.get("closure")
    except (TypeError, ValueError):
        return False
    return param is not None and param.default is inspect.Parameter.empty


def _evaluate(closure: Callable) -> Any:
    with torch.enable_grad():
        return closure(True)


class Wrap(Module):
    """Uses a ``torch.optim`` optimizer (or any optimizer with the same interface) as a module.

    At each step the incoming update is handed to the wrapped optimizer as the gradient, the
    optimizer steps, and the change it made to the parameters becomes the update (the parameters are
    restored first). As the last module the wrapped optimizer writes the parameters directly. The
    wrapped optimizer's per-parameter state is this module's state, so it is saved by
    ``opt.state_dict()``, restored by ``load_state_dict`` and cleared by ``reset()``.

    Optimizers whose ``step`` requires a closure (``torch.optim.LBFGS``) get one that evaluates the
    objective's closure, so they see the true gradients at the points they try; they then need a
    closure in ``Optimizer.step``.

    Specs: ``opt_fn`` travels in a spec when it is a registered callable; every ``torch.optim``
    optimizer class is (``tz.m.Wrap(torch.optim.Adam, lr=1)``).

    Args:
        opt_fn: ``opt_fn(params, *args, **kwargs)`` builds the optimizer (e.g. ``torch.optim.Adam``),
            or an optimizer already built over the same parameters.
        *args: positional arguments of ``opt_fn`` after the parameters.
        use_param_groups: pass the settings of the optimizer's parameter groups (and of
            ``set_param_groups``) that the wrapped optimizer knows (e.g. ``lr``, ``betas``) to it, one
            wrapped group per distinct setting, re-read at every step so schedulers work.
        **kwargs: keyword arguments of ``opt_fn``.
    """

    def __init__(self, opt_fn: Callable[..., torch.optim.Optimizer] | torch.optim.Optimizer, *args,
                 use_param_groups: bool = True, **kwargs):
        if not (callable(opt_fn) or isinstance(opt_fn, torch.optim.Optimizer)):
            raise TypeError(f"opt_fn must be an optimizer class, a function returning an optimizer or an optimizer, got {type(opt_fn).__name__}")
        super().__init__()
        self._opt_fn = opt_fn
        self._args = args
        self._kwargs = kwargs
        self._use_param_groups = use_param_groups
        self.optimizer: torch.optim.Optimizer | None = opt_fn if isinstance(opt_fn, torch.optim.Optimizer) else None
        self._group_maps: list[Any] = []

    # -- building -------------------------------------------------------------------
    def _groups(self, params: list[torch.Tensor]) -> tuple[list[list[torch.Tensor]], list[Any]]:
        """Parameters grouped by their settings (one group when ``use_param_groups`` is off)."""
        if not self._use_param_groups:
            return [list(params)], [None]
        by_map: dict[int, int] = {}
        groups: list[list[torch.Tensor]] = []
        maps: list[Any] = []
        for p in params:
            m = self.settings[p]
            k = by_map.get(id(m))
            if k is None:
                k = by_map[id(m)] = len(groups)
                groups.append([])
                maps.append(m)
            groups[k].append(p)
        return groups, maps

    def _sync(self) -> None:
        """Copies the current settings the wrapped optimizer knows into its groups."""
        opt = self.optimizer
        assert opt is not None
        known = opt.defaults
        for group, m in zip(opt.param_groups, self._group_maps):
            if m is None:
                continue
            for layer in m.maps[:2]:  # set_param_groups overrides, then the optimizer's group
                for k in known:
                    if k in layer and k not in ("params", "param_names"):
                        group[k] = layer[k]
                        break

    def _build(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        if self.optimizer is None:
            groups, maps = self._groups(params)
            self.optimizer = self._opt_fn([{"params": g} for g in groups], *self._args, **self._kwargs)
            self._group_maps = maps
        elif not self._group_maps:
            self._group_maps = [None] * len(self.optimizer.param_groups)
        # the wrapped optimizer keeps its per-parameter state in this module's state
        self.optimizer.state = self.state
        return self.optimizer

    def set_param_groups(self, param_groups: Any) -> "Wrap":
        super().set_param_groups(param_groups)
        if not isinstance(self._opt_fn, torch.optim.Optimizer):
            self.optimizer = None  # rebuilt with the new groups
        return self

    # -- stepping ---------------------------------------------------------------------
    def apply(self, objective: Objective) -> Objective:
        params = objective.params
        opt = self.optimizer if self.optimizer is not None and self.optimizer.state is self.state else self._build(params)
        self._sync()
        update = objective.peek_updates()
        saved_grads = [p.grad for p in params]
        fused = objective.is_last and not objective.skip_update and objective.last_module_lrs is None
        x0 = None if fused else [p.detach().clone() for p in params]
        try:
            for p, u in zip(params, update):
                p.grad = u
            if _needs_closure(opt):
                # e.g. torch.optim.LBFGS: its evaluations go through the objective's closure (true gradients)
                if objective.closure is None:
                    raise RuntimeError(f"{type(opt).__name__} needs a closure; pass one to optimizer.step(closure)")
                closure = objective.closure
                opt.step(lambda: _evaluate(closure))
            else:
                opt.step()
        finally:
            for p, g in zip(params, saved_grads):
                p.grad = g
        if fused:
            # the last module: the wrapped optimizer's step is the step
            objective.skip_update = True
            objective.stop = True
            return objective
        assert x0 is not None
        with torch.no_grad():
            update = torch._foreach_sub(x0, [p.detach() for p in params])
            torch._foreach_copy_(params, x0)
        objective.set_updates(update, owned=True)
        return objective

    def reset(self) -> None:
        super().reset()
        if self.optimizer is not None:
            self.optimizer.state = self.state

    def __setstate__(self, d: dict[str, Any]) -> None:
        super().__setstate__(d)
        if self.optimizer is not None:
            self.optimizer.state = self.state
