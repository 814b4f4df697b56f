"""All torchzero modules, reachable as ``tz.m.<Name>``.

Each family is a subpackage (``adaptive/``, ``line_search/``, ...) whose ``__all__`` lists what it
exports; this package imports them all. A module the seed documents but this library does not
implement yet is still reachable by name, but constructing it raises ``NotImplementedError``;
:func:`missing` lists those.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from .catalog import SEED_MODULES

_implemented: dict[str, Any] = {}
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if not _info.ispkg:
        continue
    _mod = importlib.import_module(f"{__name__}.{_info.name}")
    for _name in getattr(_mod, "__all__", ()):
        if _name in _implemented and _implemented[_name] is not getattr(_mod, _name):
            raise ImportError(f"two families export {_name!r}")
        _implemented[_name] = getattr(_mod, _name)
globals().update(_implemented)


def _missing_stub(name: str) -> type:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"tz.m.{name} ({SEED_MODULES[name]}) is not implemented yet")
    return type(name, (), {"__init__": __init__, "__doc__": f"Not implemented yet: {name}.", "__module__": __name__})


for _name in SEED_MODULES:
    if _name not in _implemented:
        globals()[_name] = _missing_stub(_name)


def implemented() -> list[str]:
    """Names of the seed's modules that are implemented."""
    return sorted(n for n in SEED_MODULES if n in _implemented)


def missing() -> list[str]:
    """Names of the seed's modules that are not implemented yet (constructing them raises NotImplementedError)."""
    return sorted(n for n in SEED_MODULES if n not in _implemented)


__all__ = sorted(set(_implemented) | set(SEED_MODULES))
