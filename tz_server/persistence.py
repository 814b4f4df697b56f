"""Session checkpoints and tell journals in a state directory.

Layout: ``<state_dir>/sessions/<name>/checkpoint.pt`` (``torch.save`` of tensors and plain values
only, read back with ``torch.load(weights_only=True)``) and ``journal.bin`` (length-prefixed
``TellItem`` protobuf records: the tells received since the checkpoint). Checkpoints are written
atomically: temporary file, fsync, rename, fsync of the directory. Nothing is ever unpickled.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from tz_client._proto.torchzero_service.v1 import service_pb2 as pb

log = logging.getLogger("tz_server.persistence")

CHECKPOINT = "checkpoint.pt"
JOURNAL = "journal.bin"
LOCK = "server.lock"
"""File of the state directory a running server holds locked (``flock``): a second server given the
same directory refuses to start instead of writing over the first one's checkpoints and journals."""
SET_ASIDE = "unrestorable"
"""Folder of the state directory where sessions that could not be restored are moved (kept, not
deleted, and never overwritten by a new session of the same name)."""


def atomic_save(obj: Any, path: Path) -> None:
    """Writes ``obj`` with ``torch.save`` so that ``path`` holds either the old or the new data."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class WriteGuard:
    """The writes of one session's checkpoints and journal. A write that fails (a full disk, a lost
    mount, a directory that went away) is logged and recorded, not raised: the session goes on in
    memory, the next write is tried at the next occasion, and ``SessionInfo.persist_error`` and the
    ``tz_persist_failures`` metric tell clients and operators until a write succeeds again."""

    def __init__(self, name: str):
        self.name = name
        self.error = ""
        """The last failure ("" while writes work)."""
        self.failures = 0

    def run(self, what: str, write: Callable[[], None]) -> bool:
        """``write()``; False (logged, recorded) if it raised."""
        try:
            write()
        except Exception as e:
            self.failures += 1
            error = f"cannot write the {what}: {type(e).__name__}: {e}"
            if error != self.error:  # (once per distinct failure, not at every step)
                log.error("session %s: %s; it goes on in memory, the write is retried", self.name, error)
            self.error = error
            return False
        if self.error:
            log.warning("session %s: writes work again (the %s was written)", self.name, what)
            self.error = ""
        return True


class Journal:
    """An append-only file of tells; survives a killed process (written through to the OS)."""

    def __init__(self, path: Path, fsync: bool = False):
        self.path = path
        self.fsync = fsync
        self._lock = threading.Lock()
        self._f = open(path, "ab")

    def append(self, items: list[pb.TellItem]) -> None:
        data = b"".join(struct.pack("<I", it.ByteSize()) + it.SerializeToString() for it in items)
        with self._lock:
            self._f.write(data)
            self._f.flush()
            if self.fsync:
                os.fsync(self._f.fileno())

    def rewrite(self, items: list[pb.TellItem]) -> None:
        """Replaces the journal's content by ``items`` (after a checkpoint)."""
        with self._lock:
            try:
                self._f.close()
            except (OSError, ValueError):  # records it could not flush: the new content replaces them
                pass
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "wb") as f:
                for it in items:
                    f.write(struct.pack("<I", it.ByteSize()) + it.SerializeToString())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self._f = open(self.path, "ab")

    def close(self) -> None:
        with self._lock:
            self._f.close()

    @staticmethod
    def read(path: Path) -> Iterator[pb.TellItem]:
        """The records of a journal; a torn last record (killed mid-write) is dropped."""
        if not path.exists():
            return
        data = path.read_bytes()
        pos = 0
        while pos + 4 <= len(data):
            (n,) = struct.unpack_from("<I", data, pos)
            if pos + 4 + n > len(data):
                break
            try:
                yield pb.TellItem.FromString(data[pos + 4:pos + 4 + n])
            except Exception:  # a corrupt record: nothing after it can be trusted
                log.warning("journal %s: corrupt record at byte %d, ignoring the rest", path, pos)
                break
            pos += 4 + n


class StateDirInUse(RuntimeError):
    """Another server holds the state directory."""


def lock_state_dir(root: Path) -> Any:
    """Locks ``root/server.lock`` for this process (the lock goes with the process, however it
    ends) and writes who holds it; raises :class:`StateDirInUse` naming the holder if it is taken.
    Returns the open lock file (closing it releases the lock); None where ``fcntl`` is missing."""
    try:
        import fcntl
    except ImportError:  # (not a POSIX system: no lock)
        return None
    f = open(root / LOCK, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise StateDirInUse(f"state directory {root} is in use by another server ({holder}); give each server its "
                            f"own state directory") from None
    except OSError as e:  # a file system without locks (some network mounts): go on unguarded
        log.warning("cannot lock state directory %s (%s): make sure no other server uses it", root, e)
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    f.flush()
    return f


class Store:
    """The state directory: one folder per session. A store holds the directory's lock until
    :meth:`close` (see :data:`LOCK`)."""

    def __init__(self, root: str | os.PathLike, fsync_journal: bool = False):
        self.root = Path(root)
        self.sessions = self.root / "sessions"
        self.sessions.mkdir(parents=True, exist_ok=True)
        self._lock_file = lock_state_dir(self.root)
        self.fsync_journal = fsync_journal

    def close(self) -> None:
        """Releases the state directory (after the sessions wrote their last checkpoints)."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def dir(self, name: str) -> Path:
        d = self.sessions / name
        d.mkdir(exist_ok=True)
        return d

    def save(self, name: str, state: dict[str, Any]) -> None:
        atomic_save(state, self.dir(name) / CHECKPOINT)

    def journal(self, name: str) -> Journal:
        return Journal(self.dir(name) / JOURNAL, self.fsync_journal)

    def restore(self, build: Callable[[str, dict[str, Any], list[pb.TellItem]], None]) -> None:
        """Calls ``build(name, state, journal)`` for every saved session. A session whose checkpoint
        cannot be read, or that ``build`` refuses (raises), is logged and moved to
        ``<state_dir>/unrestorable/`` with the reason: kept for inspection, never deleted, and not
        overwritten by a new session of the same name."""
        for d in sorted(self.sessions.iterdir()):
            ck = d / CHECKPOINT
            if not ck.is_file():
                continue
            try:
                state = torch.load(ck, map_location="cpu", weights_only=True)
                build(d.name, state, list(Journal.read(d / JOURNAL)))
            except Exception as e:
                where = self.set_aside(d.name, f"{type(e).__name__}: {e}")
                log.error("cannot restore session %s: %s (moved to %s)", d.name, e, where)

    def set_aside(self, name: str, reason: str) -> Path:
        """Moves the session's folder to ``unrestorable/<name>-<UTC time>`` with a ``reason.txt``."""
        root = self.root / SET_ASIDE
        root.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dest = root / f"{name}-{stamp}"
        k = 1
        while dest.exists():
            k += 1
            dest = root / f"{name}-{stamp}-{k}"
        os.replace(self.sessions / name, dest)
        (dest / "reason.txt").write_text(reason + "\n")
        fsync_dir(self.sessions)
        return dest

    def delete(self, name: str) -> None:
        shutil.rmtree(self.sessions / name, ignore_errors=True)
