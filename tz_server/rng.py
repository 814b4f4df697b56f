"""Exclusive use of torch's global random number generator by one session at a time.

Modules without their own seed draw from the global RNG. Several sessions step concurrently on a
server, so a session computes only while holding :data:`GLOBAL_RNG`, with its own RNG state swapped
in; it swaps the state out and releases the lock whenever it waits (for tells, closure results or
other workers). A study created with a seed therefore draws exactly the numbers a local run after
``torch.manual_seed(seed)`` would, whatever else the server does.
"""
from __future__ import annotations

import threading

import torch

GLOBAL_RNG = threading.RLock()


class RngOwner:
    """The saved global-RNG state of one session (None: leave the global state as it is)."""

    def __init__(self, device: torch.device, seed: int | None = None, state: dict | None = None):
        self.device = device
        self.cpu: torch.Tensor | None = None
        self.cuda: torch.Tensor | None = None
        if state is not None:
            self.cpu, self.cuda = state.get("cpu"), state.get("cuda")
        elif seed is not None:
            with GLOBAL_RNG:
                saved = self._get()
                torch.manual_seed(int(seed))
                self.cpu, self.cuda = self._get()
                self._set(*saved)

    def _get(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    def _set(self, cpu: torch.Tensor | None, cuda: torch.Tensor | None) -> None:
        if cpu is not None:
            torch.set_rng_state(cpu)
        if cuda is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(cuda, self.device)

    def state(self) -> dict:
        return {"cpu": self.cpu, "cuda": self.cuda}

    def acquire(self) -> None:
        GLOBAL_RNG.acquire()
        if self.cpu is not None:
            self._outer = self._get()
            self._set(self.cpu, self.cuda)

    def release(self) -> None:
        if self.cpu is not None:
            self.cpu, self.cuda = self._get()
            self._set(*self._outer)  # the process's own random stream is left as it was
        GLOBAL_RNG.release()

    def owned(self) -> _Owned:
        """A context manager holding the global RNG, with this session's state swapped in."""
        return _Owned(self)

    def released(self) -> _Released:
        """A context manager giving the global RNG up while waiting (inside :meth:`owned`)."""
        return _Released(self)


class _Owned:
    """``with owner.owned():`` (a plain class: cheaper than a generator-based context manager on
    the hot path of every step)."""

    __slots__ = ("owner",)

    def __init__(self, owner: RngOwner):
        self.owner = owner

    def __enter__(self) -> None:
        self.owner.acquire()

    def __exit__(self, *exc: object) -> None:
        self.owner.release()


class _Released(_Owned):
    """``with owner.released():``."""

    __slots__ = ()

    def __enter__(self) -> None:
        self.owner.release()

    def __exit__(self, *exc: object) -> None:
        self.owner.acquire()
