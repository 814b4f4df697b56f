"""Portable module state: plain values and tensors keyed by parameter index.

The produced dicts load with ``torch.load(weights_only=True)``. Stand-in parameters that modules
create for internal buffers (:meth:`Module.get_fake_params`) are saved by shape and recreated on
load, so children keyed on them find their state again.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .module import Module

_PLAIN = (str, int, float, bool, type(None), torch.dtype, torch.device, torch.Size)


def check_plain(value: Any, where: str) -> Any:
    """Raises TypeError if ``value`` is not made of plain values, containers and tensors."""
    if isinstance(value, torch.Tensor) or isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_plain(v, f"{where}[{i}]")
        return value
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: state dict keys must be str or int, got {type(k).__name__}")
            check_plain(v, f"{where}[{k!r}]")
        return value
    raise TypeError(f"{where}: cannot be saved portably ({type(value).__name__}); keep module state to tensors and plain values")


def _index_of(index: dict[int, Any], p: torch.Tensor) -> Any:
    k = index.get(id(p))
    if k is None:
        k = index[id(p)] = f"p{len(index)}"
    return k


def module_state_dict(module: "Module", index: Mapping[int, Any] | None, path: str = "") -> dict[str, Any]:
    index = dict(index) if index is not None else {}
    name = type(module).__name__
    fakes = {}
    for key, tensors in module._fake_params.items():
        fakes[key] = [[list(t.shape), t.dtype] for t in tensors]
        for j, t in enumerate(tensors):
            index[id(t)] = f"{path}/{key}/{j}"
    state = {}
    for p, st in module.state.items():
        if st:
            state[_index_of(index, p)] = check_plain(dict(st), f"{name}.state")
    return {
        "type": name,
        "state": state,
        "global_state": check_plain(dict(module.global_state), f"{name}.global_state"),
        "fake_params": fakes,
        "generators": {f"{dev}|{seed}": g.get_state() for (dev, seed), g in module._generators.items()},
        "children": {k: module_state_dict(c, index, f"{path}/{k}") for k, c in module.children.items()},
    }


def load_module_state_dict(module: "Module", sd: Mapping[str, Any], params: Mapping[Any, torch.Tensor] | Sequence[torch.Tensor] | None, path: str = "") -> None:
    name = type(module).__name__
    if sd.get("type", name) != name:
        raise ValueError(f"state dict is for {sd['type']}, not {name}")
    lookup: dict[Any, torch.Tensor] = dict(enumerate(params)) if isinstance(params, Sequence) else dict(params or {})
    module._fake_params = {}
    for key, shapes in sd.get("fake_params", {}).items():
        tensors = [torch.zeros((), dtype=dt).expand(shape) for shape, dt in shapes]
        module._fake_params[key] = tensors
        for j, t in enumerate(tensors):
            lookup[f"{path}/{key}/{j}"] = t
    module.state.clear()
    for k, st in sd["state"].items():
        p = lookup.get(k)
        if p is None:
            if isinstance(k, str) and k.startswith("p"):
                # a standalone module saved without an index: keep the state under a placeholder
                p = torch.zeros(())
                lookup[k] = p
            else:
                raise KeyError(f"{name}: state for parameter {k!r} has no matching parameter")
        module.state[p] = {kk: _to_device(v, p) for kk, v in st.items()}
    module.global_state = dict(sd["global_state"])
    module._generators = {}
    for key, st in sd.get("generators", {}).items():
        dev, seed = key.rsplit("|", 1)
        g = torch.Generator(device=dev)
        g.set_state(st)
        module._generators[(dev, int(seed))] = g
    children = sd.get("children", {})
    if set(children) != set(module.children):
        raise ValueError(f"{name}: saved children {sorted(children)} do not match {sorted(module.children)}")
    for k, c in module.children.items():
        load_module_state_dict(c, children[k], lookup, f"{path}/{k}")


def _to_device(v: Any, p: torch.Tensor) -> Any:
    if isinstance(v, torch.Tensor) and v.device != p.device:
        return v.to(p.device)
    return v
