"""Module specs: JSON-safe descriptions of modules, rebuilt only through a registry.

``to_spec(module)`` gives ``{"module": "Adam", "args": [...], "kwargs": {...}}`` from the
arguments the module was constructed with; nested modules become nested specs. ``from_spec``
rebuilds it, instantiating only classes in the registry (every public ``Module`` subclass defined
inside the ``torchzero`` package registers itself) and resolving callables only from the callable
registry. Nothing is unpickled or evaluated, so specs can safely come from the network.

Values other than JSON scalars, lists and str-keyed dicts are wrapped in one-key dicts:
``{"__module__": spec}``, ``{"__tensor__": {...}}``, ``{"__tuple__": [...]}``, ``{"__dict__": {...}}``,
``{"__float__": "inf"}``, ``{"__dtype__": "float32"}``, ``{"__device__": "cpu"}``,
``{"__callable__": "torch.optim.Adam"}``.
"""
from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from typing import Any

import torch

from .module import Module

MODULES: dict[str, type[Module]] = {}
CALLABLES: dict[str, Any] = {}
_CALLABLE_NAMES: dict[int, str] = {}


class SpecError(ValueError):
    """A spec that cannot be produced or rebuilt (unknown module, bad argument...)."""


def register_module(cls: type[Module], name: str | None = None) -> type[Module]:
    """Adds a module class to the registry under ``name`` (its class name by default)."""
    name = name or cls.__name__
    prev = MODULES.get(name)
    if prev is not None and prev is not cls and prev.__qualname__ == cls.__qualname__ and prev.__module__ == cls.__module__:
        prev = None  # the same class, re-imported
    if prev is not None and prev is not cls:
        raise RuntimeError(f"two module classes named {name!r}: {prev.__module__} and {cls.__module__}")
    MODULES[name] = cls
    return cls


def register_callable(obj: Any, name: str | None = None) -> Any:
    """Allows ``obj`` (a function or class) to appear in specs under ``name``."""
    name = name or f"{obj.__module__}.{obj.__qualname__}"
    CALLABLES[name] = obj
    _CALLABLE_NAMES[id(obj)] = name
    return obj


def _register_torch_callables() -> None:
    import torch.optim as optim
    import torch.optim.lr_scheduler as sched
    for mod in (optim, sched):
        for n in dir(mod):
            obj = getattr(mod, n)
            if isinstance(obj, type) and (issubclass(obj, optim.Optimizer) or issubclass(obj, sched.LRScheduler)):
                register_callable(obj, f"{mod.__name__}.{n}")


_register_torch_callables()


def encode(value: Any, where: str = "value") -> Any:
    """Encodes one constructor argument as JSON-safe data."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, Module):
        return {"__module__": to_spec(value)}
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        return {"__tensor__": {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                               "data": [encode(float(x) if t.is_floating_point() else x) for x in t.reshape(-1).tolist()]}}
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, list):
        return [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise SpecError(f"{where}: dict keys must be strings")
        return {"__dict__": {k: encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
    name = _CALLABLE_NAMES.get(id(value))
    if name is not None:
        return {"__callable__": name}
    if callable(value):
        raise SpecError(f"{where}: callable {getattr(value, '__name__', value)!r} is not registered and cannot be sent "
                        "in a spec (register it with torchzero.core.spec.register_callable on both sides)")
    raise SpecError(f"{where}: cannot encode a {type(value).__name__} in a spec")


def decode(data: Any, where: str = "value") -> Any:
    """Inverse of :func:`encode`; only registered modules and callables are instantiated."""
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [decode(v, f"{where}[{i}]") for i, v in enumerate(data)]
    if isinstance(data, dict):
        if len(data) != 1:
            raise SpecError(f"{where}: malformed value {data!r}")
        (tag, v), = data.items()
        if tag == "__module__":
            return from_spec(v)
        if tag == "__tuple__":
            return tuple(decode(x, f"{where}[{i}]") for i, x in enumerate(_expect(v, list, where)))
        if tag == "__dict__":
            return {str(k): decode(x, f"{where}[{k!r}]") for k, x in _expect(v, dict, where).items()}
        if tag == "__float__":
            if v not in ("inf", "-inf", "nan"):
                raise SpecError(f"{where}: bad float {v!r}")
            return float(v)
        if tag == "__dtype__":
            dt = getattr(torch, str(v), None)
            if not isinstance(dt, torch.dtype):
                raise SpecError(f"{where}: unknown dtype {v!r}")
            return dt
        if tag == "__device__":
            try:
                return torch.device(str(v))
            except (RuntimeError, ValueError) as e:
                raise SpecError(f"{where}: bad device {v!r}") from e
        if tag == "__tensor__":
            v = _expect(v, dict, where)
            dt = getattr(torch, str(v.get("dtype")), None)
            if not isinstance(dt, torch.dtype):
                raise SpecError(f"{where}: unknown tensor dtype {v.get('dtype')!r}")
            shape = [int(s) for s in _expect(v.get("shape"), list, where)]
            vals = [decode(x) for x in _expect(v.get("data"), list, where)]
            if math.prod(shape) != len(vals):
                raise SpecError(f"{where}: tensor data does not match shape {shape}")
            return torch.tensor(vals, dtype=dt).reshape(shape)
        if tag == "__callable__":
            obj = CALLABLES.get(str(v))
            if obj is None:
                raise SpecError(f"{where}: unknown callable {v!r}")
            return obj
        raise SpecError(f"{where}: unknown tag {tag!r}")
    raise SpecError(f"{where}: cannot decode a {type(data).__name__}")


def _expect(v: Any, typ: type, where: str) -> Any:
    if not isinstance(v, typ):
        raise SpecError(f"{where}: expected {typ.__name__}, got {type(v).__name__}")
    return v


def to_spec(module: Module) -> dict[str, Any]:
    """The JSON-safe spec of ``module`` (built from its constructor arguments)."""
    name = type(module).__name__
    if MODULES.get(name) is not type(module):
        raise SpecError(f"module class {name} is not registered; only torchzero modules can be sent as specs")
    args, kwargs = module.__dict__.get("_init_args", ((), {}))
    return {"module": name,
            "args": [encode(a, f"{name}.args[{i}]") for i, a in enumerate(args)],
            "kwargs": {k: encode(v, f"{name}.{k}") for k, v in kwargs.items()}}


def from_spec(spec: Any) -> Module:
    """Builds a module from a spec produced by :func:`to_spec`."""
    if not isinstance(spec, dict) or "module" not in spec:
        raise SpecError(f"a module spec is a dict with a 'module' key, got {spec!r:.200}")
    name = spec["module"]
    cls = MODULES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise SpecError(f"unknown module {name!r}")
    extra = set(spec) - {"module", "args", "kwargs"}
    if extra:
        raise SpecError(f"{name}: unexpected spec keys {sorted(extra)}")
    args = decode(_expect(spec.get("args", []), list, name), f"{name}.args")
    kwargs = {str(k): decode(v, f"{name}.{k}") for k, v in _expect(spec.get("kwargs", {}), dict, name).items()}
    _check_numbers(cls, name, args, kwargs)
    try:
        return cls(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as e:  # whatever a constructor raises on values it cannot take (n=inf: OverflowError...)
        raise SpecError(f"{name}: bad arguments: {type(e).__name__}: {e}") from e


def _check_numbers(cls: type[Module], name: str, args: list, kwargs: dict[str, Any]) -> None:
    """Refuses a value that cannot be a number for a constructor parameter annotated as a number
    only, e.g. ``lr: "1e-3"`` read from a YAML file: the module would be built and fail only at its
    first step (see :func:`setting_problem`)."""
    try:
        sig = inspect.signature(cls.__init__)
        bound = sig.bind(None, *args, **kwargs).arguments
    except (TypeError, ValueError):
        return  # the constructor reports the mismatch itself
    for key, value in bound.items():
        why = _number_problem(sig.parameters[key].annotation, value)
        if why:
            raise SpecError(f"{name}.{key}: {why}")


def setting_problem(module: Module, key: str, value: Any) -> str | None:
    """Why ``value`` cannot be ``module``'s setting ``key`` (e.g. a parameter group's ``lr``), or
    None. Only what the constructor's annotation rules out for certain is refused: a parameter
    annotated as a number only (``float``, ``int``, optionally ``None``) takes real numbers and
    tensors (and ``None`` when annotated so), not strings, sequences or mappings."""
    try:
        param = inspect.signature(type(module).__init__).parameters.get(key)
    except (TypeError, ValueError):
        return None
    return None if param is None else _number_problem(param.annotation, value)


def _number_problem(annotation: Any, value: Any) -> str | None:
    words = set(re.findall(r"[A-Za-z_]+", "" if annotation is inspect.Parameter.empty else str(annotation)))
    if not words or not words <= {"float", "int", "None", "Optional"}:
        return None
    if isinstance(value, (str, bytes)):
        return f"expected a number, got the string {value!r:.60}"
    if value is None:
        return None if words & {"None", "Optional"} else "expected a number, got None"
    if isinstance(value, (list, tuple, dict, set)):
        return f"expected a number, got a {type(value).__name__}"
    return None


def module_names() -> list[str]:
    """Names of every registered module class."""
    return sorted(MODULES)


def is_callable_registered(fn: Callable) -> bool:
    return id(fn) in _CALLABLE_NAMES
