"""The :class:`Module` base class: one step of an optimization algorithm.

A module keeps per-parameter state (``self.state[p]``, keyed by the parameter tensor as in
``torch.optim``), global state (``self.global_state``), per-parameter settings resolved from
parameter groups (``self.settings[p]``) and named children. A step is ``update`` (change internal
state from the :class:`~torchzero.core.objective.Objective`) followed by ``apply`` (change the
objective's update using that state). Keeping the two apart lets meta-modules such as ``Online``
or trust regions call them separately.
"""
from __future__ import annotations

import copy
from abc import ABC
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from ..utils.params import make_param_groups
from .settings import Settings

if TYPE_CHECKING:
    from .objective import Objective

ListLike = TypeVar("ListLike", bound=list)


class Module(ABC):
    """Abstract base class of optimizer modules.

    Args:
        defaults: default values of this module's settings, used where a parameter group does
            not specify them.

    Subclasses implement :meth:`apply` (and optionally :meth:`update`). The arguments a module
    was constructed with are recorded, so that it can be turned into a JSON-safe spec
    (:func:`torchzero.core.spec.to_spec`) and rebuilt on another machine.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # every public module class of the library can be rebuilt from a spec
        if cls.__module__.startswith("torchzero.") and not cls.__name__.startswith("_"):
            from .spec import register_module
            register_module(cls)

    def __new__(cls, *args: Any, **kwargs: Any):
        obj = super().__new__(cls)
        # recorded for specs; unpickling calls __new__ without arguments and then restores __dict__
        obj.__dict__["_init_args"] = (args, kwargs)
        return obj

    def __init__(self, defaults: dict[str, Any] | None = None):
        self.defaults: dict[str, Any] = dict(defaults) if defaults is not None else {}
        self.settings = Settings(self.defaults)
        """per-parameter settings: ``self.settings[p]`` is a mapping of this module's settings for ``p``."""
        self.state: defaultdict[torch.Tensor, dict[str, Any]] = defaultdict(dict)
        """per-parameter state, e.g. momentum buffers."""
        self.global_state: dict[str, Any] = {}
        """state that is not per-parameter (plain values and tensors only)."""
        self.children: dict[str, Module] = {}
        """named child modules."""
        self._fake_params: dict[str, list[torch.Tensor]] = {}
        self._generators: dict[tuple[str, int], torch.Generator] = {}

    # ------------------------------------------------------------------ settings
    def set_param_groups(self, param_groups: Any) -> "Module":
        """Sets per-parameter settings that apply to this module only (highest priority).

        ``param_groups`` is anything ``torch.optim`` accepts; keys other than ``params`` become
        overrides for the parameters of that group.
        """
        for group in make_param_groups(param_groups):
            over = {k: v for k, v in group.items() if k not in ("params", "param_names")}
            for p in group["params"]:
                self.settings.overrides[p] = over
        self.settings.invalidate()
        return self

    def _set_global_groups(self, mapping: Mapping[torch.Tensor, dict[str, Any]]) -> None:
        """Called by the optimizer: the live parameter-group dict of every parameter."""
        self.settings.groups.update(mapping)
        self.settings.invalidate()
        for c in self.children.values():
            c._set_global_groups(mapping)

    # ------------------------------------------------------------------ children
    def set_child(self, key: str, module: "Module | Sequence[Module]") -> None:
        from .chain import maybe_chain
        child = maybe_chain(module)
        self.children[key] = child
        if self.settings.groups:
            child._set_global_groups(self.settings.groups)

    def set_children_sequence(self, modules: "Iterable[Module | Sequence[Module]]", prefix: str = "module_") -> None:
        for i, m in enumerate(modules):
            self.set_child(f"{prefix}{i}", m)

    def get_children_sequence(self, prefix: str = "module_") -> list["Module"]:
        return [self.children[f"{prefix}{i}"] for i in range(len(self.children)) if f"{prefix}{i}" in self.children]

    def modules(self) -> list["Module"]:
        """This module followed by all of its descendants, depth first."""
        out = [self]
        for c in self.children.values():
            out.extend(c.modules())
        return out

    # ------------------------------------------------------------------ stepping
    def update(self, objective: "Objective") -> None:
        """Updates internal state from ``objective``; must not modify ``objective.updates``.

        Guaranteed to be called at least once before :meth:`apply`. Optional.
        """

    def apply(self, objective: "Objective") -> "Objective":
        """Changes ``objective`` (usually its ``updates``) using the internal state and returns it."""
        raise NotImplementedError(f"{type(self).__name__} does not implement apply")

    def step(self, objective: "Objective") -> "Objective":
        """``update`` then ``apply``."""
        self.update(objective)
        return self.apply(objective)

    def inner_step(self, key: str, objective: "Objective", must_exist: bool = True) -> "Objective":
        """Steps the child ``key`` on ``objective`` and returns the resulting objective."""
        child = self.children.get(key)
        if child is None:
            if must_exist:
                raise KeyError(f"{type(self).__name__} has no child {key!r}")
            return objective
        from .functional import step as _step
        return _step(objective, child)

    def inner_step_tensors(self, key: str, tensors: list[torch.Tensor], clone: bool,
                           params: Iterable[torch.Tensor] | None = None, grads: Sequence[torch.Tensor] | None = None,
                           loss: torch.Tensor | None = None, closure: Callable | None = None,
                           objective: "Objective | None" = None, must_exist: bool = True) -> list[torch.Tensor]:
        """Steps the child ``key`` on arbitrary ``tensors`` (e.g. an internal buffer) and returns the result.

        With ``params=None`` the child keys its state on stable stand-in parameters shaped like
        ``tensors``. ``clone`` copies ``tensors`` first so that a child that works in place does
        not modify the caller's buffers (ignored when the child does not exist).
        """
        child = self.children.get(key)
        if child is None:
            if must_exist:
                raise KeyError(f"{type(self).__name__} has no child {key!r}")
            return tensors
        from .functional import step_tensors
        if clone:
            tensors = [t.clone() for t in tensors]
        if objective is not None:
            params, grads, loss, closure = objective.params, objective.grads, objective.loss, objective.closure
        if params is None:
            params = self.get_fake_params(key, tensors)
        return step_tensors(child, tensors, params=list(params), grads=grads, loss=loss, closure=closure, objective=objective)

    def get_fake_params(self, key: str, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Stable stand-in parameters shaped like ``like``, used as state keys for buffers.

        They take no memory (stride-0 views) and survive ``state_dict`` / ``load_state_dict``.
        """
        fakes = self._fake_params.get(key)
        if fakes is None or len(fakes) != len(like) or any(f.shape != t.shape for f, t in zip(fakes, like)):
            fakes = [torch.zeros((), dtype=t.dtype, device=t.device).expand(t.shape) for t in like]
            self._fake_params[key] = fakes
        return fakes

    # ------------------------------------------------------------------ state
    def get_state(
        self,
        params: Sequence[torch.Tensor],
        key: str | list[str] | tuple[str, ...],
        key2: str | None = None,
        *keys: str,
        must_exist: bool = False,
        init: Any = torch.zeros_like,
        cls: type[ListLike] = list,  # type: ignore[assignment]
    ) -> Any:
        """Per-parameter state values for one or more keys, created with ``init`` when missing.

        ``get_state(params, "a")`` returns one ``cls`` of values; ``get_state(params, "a", "b")``
        returns one per key; a list of keys always returns a list. ``init`` is a callable of the
        parameter (default ``torch.zeros_like``), ``"param"`` / ``"grad"`` to copy those, a plain
        value (tensors are cloned), or a sequence of per-parameter (single key) or per-key
        (several keys) inits.
        """
        if isinstance(key, (list, tuple)):
            all_keys, single = list(key), False
        else:
            all_keys = [key] + ([key2] if key2 is not None else []) + list(keys)
            single = len(all_keys) == 1
        if len(all_keys) > 1 and isinstance(init, (list, tuple)):
            inits = list(init)
        else:
            inits = [init] * len(all_keys)
        if single and not must_exist and cls is list:
            # fast path: every parameter already has the key
            state = self.state
            try:
                return [state[p][all_keys[0]] for p in params]
            except KeyError:
                pass
        outs = [cls() for _ in all_keys]
        for i, p in enumerate(params):
            st = self.state[p]
            for k, ini, out in zip(all_keys, inits, outs):
                v = st.get(k)
                if v is None:
                    if must_exist:
                        raise KeyError(f"{type(self).__name__}: state key {k!r} does not exist")
                    if single and isinstance(ini, (list, tuple)):
                        ini = ini[i]
                    v = st[k] = _make_init(ini, p)
                out.append(v)
        return outs[0] if single else outs

    def clear_state_keys(self, *keys: str) -> None:
        for st in self.state.values():
            for k in keys:
                st.pop(k, None)

    def increment_counter(self, key: str, start: int) -> int:
        """Returns the counter ``key`` of global state (``start`` the first time) and increments it."""
        v = self.global_state.get(key, start)
        self.global_state[key] = v + 1
        return v

    def get_generator(self, device: torch.device | str, seed: int | None) -> torch.Generator | None:
        """A per-module ``torch.Generator`` for ``device`` seeded with ``seed``; ``None`` if ``seed`` is None."""
        if seed is None:
            return None
        device = torch.device(device)
        k = (str(device), int(seed))
        g = self._generators.get(k)
        if g is None:
            g = torch.Generator(device=device)
            g.manual_seed(int(seed))
            self._generators[k] = g
        return g

    def reset(self) -> None:
        """Clears per-parameter and global state of this module and all children."""
        self.state.clear()
        self.global_state.clear()
        self._generators.clear()
        for c in self.children.values():
            c.reset()

    def reset_for_online(self) -> None:
        """Clears buffers that depend on the previous evaluation (previous gradient, loss...).

        Mini-batching makes those stale; ``Online`` calls this. The default clears nothing of this
        module's own and recurses into the children.
        """
        for c in self.children.values():
            c.reset_for_online()

    def get_H(self, objective: "Objective | None" = None):
        """A linear operator for the Hessian (approximation) over all parameters as one vector, or None."""
        return None

    # ------------------------------------------------------------------ serialization
    def state_dict(self, index: Mapping[int, Any] | None = None) -> dict[str, Any]:
        """This module's state (children included) as plain values and tensors.

        ``index`` maps ``id(tensor)`` of each known parameter to its key (an int). Without it, the
        order in which parameters appear in the state is used. Loadable with
        ``torch.load(weights_only=True)``.
        """
        from .serialization import module_state_dict
        return module_state_dict(self, index)

    def load_state_dict(self, state_dict: Mapping[str, Any], params: Mapping[Any, torch.Tensor] | Sequence[torch.Tensor] | None = None) -> None:
        """Loads what :meth:`state_dict` produced. ``params`` maps the saved keys back to tensors."""
        from .serialization import load_module_state_dict
        load_module_state_dict(self, state_dict, params)

    def __getstate__(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["_generators"] = {k: g.get_state() for k, g in self._generators.items()}
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        gens = d.pop("_generators", {})
        self.__dict__.update(d)
        self._generators = {}
        for (dev, seed), st in gens.items():
            g = torch.Generator(device=dev)
            g.set_state(st)
            self._generators[(dev, seed)] = g

    def __deepcopy__(self, memo: dict) -> "Module":
        cls = type(self)
        new = object.__new__(cls)
        memo[id(self)] = new
        st = copy.deepcopy(self.__getstate__(), memo)
        new.__setstate__(st)
        return new

    def __repr__(self) -> str:
        name = type(self).__name__
        if self.children:
            return f"{name}({', '.join(repr(c) for c in self.children.values())})"
        return f"{name}()"


def _make_init(init: Any, p: torch.Tensor) -> Any:
    if callable(init) and not isinstance(init, torch.Tensor):
        return init(p)
    if isinstance(init, str):
        if init == "param":
            return p.detach().clone()
        if init == "grad":
            if p.grad is None:
                raise RuntimeError("init='grad' but the parameter has no gradient")
            return p.grad.detach().clone()
        raise ValueError(f"unknown init {init!r}")
    if isinstance(init, torch.Tensor):
        return init.detach().clone()
    return init
