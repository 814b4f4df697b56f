"""Per-parameter settings of a module.

A setting is resolved through three layers, highest priority first:

1. overrides given to this module with ``module.set_param_groups(...)``;
2. the explicit keys of the optimizer's parameter group the parameter belongs to
   (the *live* dict, so an LR scheduler writing ``group["lr"]`` is seen on the next step);
3. the module's ``defaults``.

Each parameter gets a :class:`collections.ChainMap` over the three layers. Parameters that share
the same layers share one ChainMap object, which lets hot loops resolve a key once per group
instead of once per tensor (:meth:`Settings.values`).
"""
from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping, Sequence
from typing import Any

import torch

_EMPTY: dict[str, Any] = {}


class Settings:
    """Mapping ``parameter -> ChainMap`` of settings for one module."""

    __slots__ = ("defaults", "overrides", "groups", "_cache", "_shared", "_layout")

    def __init__(self, defaults: dict[str, Any]):
        self.defaults = defaults
        self.overrides: dict[torch.Tensor, dict[str, Any]] = {}
        self.groups: dict[torch.Tensor, dict[str, Any]] = {}
        self._cache: dict[torch.Tensor, ChainMap] = {}
        self._shared: dict[tuple[int, int], ChainMap] = {}
        # (params list, distinct ChainMaps, index of each parameter's map) of the last call
        self._layout: tuple[list, list[ChainMap], list[int]] | None = None

    def __getitem__(self, p: torch.Tensor) -> ChainMap:
        c = self._cache.get(p)
        if c is None:
            ov = self.overrides.get(p, _EMPTY)
            gr = self.groups.get(p, _EMPTY)
            # share the ChainMap between parameters with the same layers
            key = (id(ov), id(gr))
            c = self._shared.get(key)
            if c is None:
                c = self._shared[key] = ChainMap(ov, gr, self.defaults)
            self._cache[p] = c
        return c

    def __contains__(self, p: torch.Tensor) -> bool:
        return p in self._cache or p in self.overrides or p in self.groups

    def invalidate(self) -> None:
        self._cache.clear()
        self._shared.clear()
        self._layout = None

    def values(self, params: Sequence[torch.Tensor], *keys: str) -> list[list[Any]]:
        """For each key, the list of per-parameter values.

        Keys are resolved once per distinct ChainMap (usually one per parameter group), and the
        grouping is remembered for the same ``params`` list object (the optimizer hands the same
        list to every step), so the per-step cost does not grow with the number of tensors in the
        common case of a single group.
        """
        layout = self._layout
        if layout is None or layout[0] is not params:
            distinct: list[ChainMap] = []
            where: dict[int, int] = {}
            index = []
            for p in params:
                m = self[p]
                i = where.get(id(m))
                if i is None:
                    i = where[id(m)] = len(distinct)
                    distinct.append(m)
                index.append(i)
            layout = self._layout = (params, distinct, index)  # type: ignore[assignment]
        _, distinct, index = layout
        n = len(index)
        out: list[list[Any]] = []
        for k in keys:
            if len(distinct) == 1:
                out.append([distinct[0][k]] * n)
            else:
                vals = [m[k] for m in distinct]
                out.append([vals[i] for i in index])
        return out


def uniform(values: Sequence[Any]) -> Any | None:
    """Returns the single value if every element of ``values`` is the same object or equal, else None."""
    first = values[0]
    for v in values:
        if v is not first and v != first:
            return None
    return first


def as_mapping(m: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return _EMPTY if m is None else m
