""":class:`Optimizer`: a ``torch.optim.Optimizer`` made of a chain of modules."""
from __future__ import annotations

import operator
from collections import ChainMap
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..utils.params import flatten_modules, make_param_groups
from .closure import CountingClosure, normalize_closure
from .evaluation import BoundEvaluator
from .module import Module
from .objective import Objective
from .serialization import check_plain
from .step_hooks import hooks_when_needed

STATE_FORMAT = "torchzero-service/1"


class ParamGroup(ChainMap):
    """A parameter group: explicit keys (``maps[0]``) over the merged module defaults.

    Schedulers and users write into ``maps[0]``; modules read the explicit keys live, with their
    own defaults below.
    """

    @property
    def explicit(self) -> dict[str, Any]:
        return self.maps[0]

    def options(self) -> dict[str, Any]:
        """The explicit keys other than ``params`` (what the user or a scheduler set)."""
        return {k: v for k, v in self.maps[0].items() if k != "params"}

    def set_options(self, options: Mapping[str, Any]) -> None:
        """Replaces the explicit keys other than ``params`` by ``options`` (``params`` in it is ignored)."""
        explicit = self.maps[0]
        for k in [k for k in explicit if k != "params"]:
            del explicit[k]
        explicit.update({k: v for k, v in options.items() if k != "params"})


def module_defaults(modules: list[Module]) -> dict[str, Any]:
    """The settings of ``modules`` (every module of the chain, nested ones included) merged in
    order: the first module that has a setting gives its default."""
    defaults: dict[str, Any] = {}
    for m in modules:
        for k, v in m.defaults.items():
            defaults.setdefault(k, v)
    return defaults


def new_param_group(param_group: dict[str, Any], defaults: dict[str, Any], groups: list[Any]) -> ParamGroup:
    """``param_group`` as a :class:`ParamGroup` over ``defaults``, checked against the existing
    ``groups`` (leaf tensors only, each parameter in one group)."""
    (g,) = make_param_groups([param_group])
    seen = {id(p) for grp in groups for p in grp["params"]}
    for p in g["params"]:
        if not p.is_leaf:
            raise ValueError("can't optimize a non-leaf tensor")
        if id(p) in seen:
            raise ValueError("a parameter appears in more than one parameter group")
    return ParamGroup(g, defaults)


class Optimizer(torch.optim.Optimizer):
    """Chains modules into an optimizer.

    Args:
        params: an iterable of parameters (or of ``(name, parameter)`` pairs), an iterable of
            parameter-group dicts, or a ``torch.nn.Module``.
        *modules: the modules, applied in order; the final update is subtracted from the parameters.

    ``step(closure)`` returns the loss at the current parameters when it was evaluated.
    Keys of a parameter group (``lr``, ``beta1``...) override the defaults of every module that
    has that setting; ``module.set_param_groups`` targets one module.
    """

    param_groups: list[ParamGroup]  # type: ignore[assignment]

    def __init__(self, params: Any, *modules: Module):
        flat = flatten_modules(modules)
        if not flat:
            raise ValueError("Optimizer needs at least one module, e.g. tz.Optimizer(params, tz.m.Adam(), tz.m.LR(1e-3))")
        for m in flat:
            if not isinstance(m, Module):
                raise TypeError(f"Optimizer modules must be torchzero modules, got {type(m).__name__}")
        self.model: torch.nn.Module | None = params if isinstance(params, torch.nn.Module) else None
        self.modules: list[Module] = flat
        self.unrolled_modules: list[Module] = [u for m in flat for u in m.modules()]
        defaults = module_defaults(self.unrolled_modules)
        self.current_step = 0
        self.num_evaluations = 0
        self.attrs: dict[str, Any] = {}
        self.should_terminate = False
        self._params_cache: list[torch.Tensor] | None = None
        self._n_params = 0
        super().__init__(make_param_groups(params), defaults)

    # -- groups ---------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        group = new_param_group(param_group, self.defaults, self.param_groups)
        self.param_groups.append(group)
        self._params_cache = None
        mapping = {p: group.explicit for p in group["params"]}
        for m in self.modules:
            m._set_global_groups(mapping)

    def _step_params(self) -> list[torch.Tensor]:
        """Parameters with ``requires_grad``, as the same list object from step to step while unchanged."""
        cached = self._params_cache
        if cached is not None and all(map(_requires_grad, cached)) and len(cached) == self._n_params:
            return cached
        self._n_params = sum(len(g["params"]) for g in self.param_groups)
        cached = self._params_cache = [p for g in self.param_groups for p in g["params"] if p.requires_grad]
        return cached

    def _all_params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    # -- stepping ---------------------------------------------------------------
    def step(self, closure: Callable | None = None, loss: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        """One optimization step. ``closure(backward=True)`` (or a plain ``closure()``, or a batch
        evaluator) re-evaluates the loss when modules need it; without a closure the gradients
        already in ``p.grad`` are used."""
        params = self._step_params()
        if hasattr(closure, "evaluate_batch") and not isinstance(closure, BoundEvaluator):
            closure = BoundEvaluator(closure, params)  # type: ignore[arg-type]
        else:
            closure = normalize_closure(closure, params)
        if closure is not None:
            closure = CountingClosure(closure, self)
        if not params:  # every parameter is frozen: nothing to update, as torch.optim skips them all
            self.current_step += 1  # (the step still counts: step numbers stay those of the training loop)
            return None if closure is None else closure(False)
        obj = Objective(params, closure, loss, self.model, self.current_step, modular=self, storage=kwargs)
        if closure is None:
            obj.grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            self.num_evaluations += 1

        modules = self.modules
        n = len(modules)
        last = modules[-1]
        last_is_lr = getattr(last, "is_learning_rate", False)
        for i, m in enumerate(modules):
            final = i == n - 1 or (last_is_lr and i == n - 2)
            obj.is_last = final and not m.children
            obj.nested_is_last = final and bool(m.children)
            obj.last_module_lrs = last.lrs(params) if (final and last_is_lr and i == n - 2) else None  # type: ignore[attr-defined]
            obj = m.step(obj)
            if obj.stop:
                break

        obj.update_parameters()
        self.attrs.update(obj.attrs)
        if obj.should_terminate is not None:
            self.should_terminate = obj.should_terminate
        obj.apply_post_step_hooks(self.modules)
        self.current_step += 1
        if obj.loss is not None:
            return obj.loss
        return obj.loss_approx

    step = hooks_when_needed(step)  # type: ignore[assignment]

    def reset(self) -> None:
        """Clears the state of every module and the termination flag (e.g. between independent runs)."""
        for m in self.modules:
            m.reset()
        self.should_terminate = False

    # -- state -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        """State keyed by parameter index; contains only tensors and plain values, so it loads
        with ``torch.load(weights_only=True)``."""
        params = self._all_params()
        index = {id(p): i for i, p in enumerate(params)}
        groups = []
        for g in self.param_groups:
            d = g.options()
            d["params"] = [index[id(p)] for p in g["params"]]
            groups.append(check_plain(d, "param_groups"))
        return {
            "format": STATE_FORMAT,
            "param_groups": groups,
            "modules": [m.state_dict(index) for m in self.modules],
            "current_step": self.current_step,
            "num_evaluations": self.num_evaluations,
            "attrs": {k: v for k, v in self.attrs.items() if _is_plain(v)},
            "should_terminate": self.should_terminate,
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:  # type: ignore[override]
        if state_dict.get("format") != STATE_FORMAT:
            raise ValueError(f"not a torchzero optimizer state dict (format={state_dict.get('format')!r})")
        params = self._all_params()
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state dict has {len(saved_groups)} parameter groups, optimizer has {len(self.param_groups)}")
        for sg, g in zip(saved_groups, self.param_groups):
            if len(sg["params"]) != len(g["params"]):
                raise ValueError("state dict parameter groups do not match the optimizer's")
        if len(state_dict["modules"]) != len(self.modules):
            raise ValueError(f"state dict has {len(state_dict['modules'])} modules, optimizer has {len(self.modules)}")
        for m, sd in zip(self.modules, state_dict["modules"]):
            m.load_state_dict(sd, params)
        for sg, g in zip(saved_groups, self.param_groups):
            g.set_options(sg)
        self.current_step = int(state_dict.get("current_step", 0))
        self.num_evaluations = int(state_dict.get("num_evaluations", 0))
        self.attrs.update(state_dict.get("attrs", {}))
        self.should_terminate = bool(state_dict.get("should_terminate", False))

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.defaults.pop("differentiable", None)

    def __repr__(self) -> str:
        return f"Optimizer({', '.join(repr(m) for m in self.modules)})"


_requires_grad = operator.attrgetter("requires_grad")


def _is_plain(v: Any) -> bool:
    try:
        check_plain(v, "attrs")
        return True
    except TypeError:
        return False


# the older name
Modular = Optimizer
