"""Session backends: ``local`` (in this process) and ``ray`` (on a Ray cluster; needs Ray).

A backend implements :class:`tz_server.backends.base.Backend`.
"""
from __future__ import annotations

from typing import Any

BACKENDS = ("local", "ray")


def make_backend(name: str, **options: Any) -> Any:
    """The backend called ``name`` built with ``options`` (see each backend's constructor)."""
    if name == "local":
        from .local import LocalBackend
        return LocalBackend(**options)
    if name == "ray":
        from .ray import make_ray_backend
        return make_ray_backend(**options)
    raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "make_backend"]
