"""Helpers for the service tests: starting a real ``tz-server`` process, comparing tensors."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]


def tz_server_command() -> list[str]:
    exe = shutil.which("tz-server", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "tz_server.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A ``tz-server`` subprocess; ``address`` is known once it printed ``listening on``."""

    def __init__(self, *args: str, port: int = 0, timeout: float = 60.0, env: dict | None = None):
        cmd = [*tz_server_command(), "--host", "127.0.0.1", "--port", str(port), "--log-format", "text", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                                     env={**os.environ, **(env or {})})
        self.stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.address = ""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if "listening on" in line:
                self.address = line.rsplit("listening on", 1)[1].strip()
                break
        if not self.address:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("tz-server did not start:\n" + "".join(self.stderr[-50:]))

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def kill(self) -> None:
        """SIGKILL: no chance to save anything."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def assert_same(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> None:
    """Bit-for-bit equality."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert torch.equal(x.detach().cpu(), y.detach().cpu()), f"max diff {(x.detach().cpu() - y.detach().cpu()).abs().max()}"


def training_step(opt: torch.optim.Optimizer, loss_fn: Callable[[], torch.Tensor], closure: bool = False) -> Any:
    """One step on ``loss_fn()``: ``backward`` then ``opt.step()``, or ``opt.step(closure)``;
    returns the loss (``backward`` is skipped when nothing requires a gradient)."""
    def c(backward: bool = True) -> torch.Tensor:
        loss = loss_fn()
        if backward:
            opt.zero_grad()
            if loss.requires_grad:
                loss.backward()
        return loss
    if closure:
        return opt.step(c)
    loss = c()
    opt.step()
    return loss
