""":class:`RemoteOptimizer`: a ``torch.optim.Optimizer`` whose state and step live on a server."""
from __future__ import annotations

import queue
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from torchzero.core.closure import normalize_closure
from torchzero.core.module import Module
from torchzero.core.optimizer import module_defaults, new_param_group
from torchzero.core.spec import decode, encode, from_spec
from torchzero.utils.params import flatten_modules

from . import specs
from ._proto.torchzero_service.v1 import service_pb2 as pb
from .channel import Connection
from .codec import iter_chunks, layout_of, loss_to_proto
from .sessions import create_session, decode_loss, pull, read_params_into, session_metadata
from .wire import is_chunk


class RemoteOptimizer(torch.optim.Optimizer):
    """``tz.Optimizer(params, *modules)`` hosted on a server: same trajectory, bit for bit.

    ``loss.backward(); opt.step()`` pushes the gradients; the server steps and the new parameters
    are written into ``params``. ``opt.step(closure)`` lets the hosted modules evaluate the
    closure wherever they need (line searches, zeroth-order methods): the server names the point,
    this process writes it into ``params``, runs the closure and sends back loss (and gradients).

    Args:
        params: parameters or parameter groups, as for any ``torch.optim.Optimizer``; group
            options (``lr``...) are sent as the hosted groups' settings. ``param_groups`` show the
            modules' settings as ``tz.Optimizer`` does, and options changed later (by an LR
            scheduler, or ``opt.param_groups[0]["lr"] = ...``) are sent with the next step; a process
            joining an existing session sends, at its first step, its options that differ from the
            session's. Groups cannot be added after creation. ``state_dict()`` holds the groups'
            options only (the state lives on the server).
        *modules: torchzero modules.
        address: the server's ``host:port``.
        session: a session name to create or, if it exists, join (resuming its parameters and
            state); None creates a fresh session.
        token: the server's token.
        device: where the server keeps the parameters and state (default: the server's device).
        workers: number of processes stepping this session together; each step the server
            averages their gradients and steps once (synchronous data parallel).
        rank: this process's index among ``workers``.
        tls / root_certificates / retry_timeout: see :class:`~tz_client.Client`.
        shards: on a server with the Ray backend, split the parameters and state across this many
            Ray actors (default: the server's ``--shards``); only per-parameter chains can be split.
        sync_timeout: with ``workers > 1``, seconds the server waits for the other workers' gradients
            once one pushed a step (default: the server's ``--sync-timeout``); then the step is
            abandoned and :meth:`step` raises :class:`~tz_client.errors.Aborted` naming the missing
            ranks (nothing was applied: calling ``step()`` again retries the step).
        session_token: the session's own token: creating the session sets it, joining or resuming
            it needs it, and every call on it carries it (on top of the server's ``token``).
        pipelined: for element-wise chains (Adam, RMSprop, Lion, momentum, LR...) with one worker:
            the server steps each piece of the parameters (``tz-server --piece-bytes``) as soon as its
            gradients have arrived and streams the new values back while the rest still arrives,
            overlapping upload, step and download. The server keeps an undo copy of the parameters
            and state for that (a step that fails part-way is undone). Other chains are refused.

    The hosted parameters are authoritative: they overwrite the local ones on every step.
    """

    def __init__(self, params: Any, *modules: Any, address: str, session: str | None = None, token: str | None = None,
                 device: str | None = None, workers: int = 1, rank: int = 0, tls: bool = False,
                 root_certificates: bytes | str | Path | None = None, retry_timeout: float = 60.0,
                 shards: int | None = None, session_token: str | None = None, sync_timeout: float | None = None,
                 pipelined: bool = False):
        built = [m if isinstance(m, Module) else from_spec(m) for m in flatten_modules(modules)]
        self._params: list[torch.Tensor] | None = None  # (set once the groups are made: they are fixed)
        super().__init__(params, module_defaults([u for m in built for u in m.modules()]))
        if not 0 <= rank < workers:
            raise ValueError(f"rank must be in [0, workers), got rank={rank}, workers={workers}")
        self._conn = Connection(address, token, tls=tls, root_certificates=root_certificates, retry_timeout=retry_timeout)
        self._md = session_metadata(self._conn, session_token)
        self._params = [p for g in self.param_groups for p in g["params"]]
        self.session = session or f"optimizer-{uuid.uuid4().hex[:12]}"
        self.workers = workers
        self.rank = rank
        index = {id(p): i for i, p in enumerate(self._params)}
        self._group_params = [[index[id(p)] for p in g["params"]] for g in self.param_groups]  # (fixed)
        self._sent_options: list[dict[str, Any]] = self._group_options()
        self._sending = self._sent_options  # the options of the step in flight
        groups = self._groups_proto(self._sent_options) if len(self.param_groups) > 1 or self._sent_options[0] else []
        header = pb.CreateHeader(name=self.session, kind=pb.OPTIMIZER, modules=specs.modules_to_proto(modules),
                                 groups=groups, exist_ok=session is not None or workers > 1, workers=workers,
                                 device=device or "",
                                 user_attrs=specs.to_map({} if shards is None else {"tz.shards": int(shards)}),
                                 session_token=session_token or "", sync_timeout=sync_timeout or 0.0,
                                 pipelined=pipelined)
        info = create_session(self._conn, header, self._params, self._md)
        if info.workers != workers:
            raise ValueError(f"session {self.session!r} has workers={info.workers}, not {workers}")
        self._step = info.step
        if not info.created:
            self._step = pull(self._conn, self.session, self._params, self._md)
            # the session's options now: this process's replace them at its first step where they differ
            self._sent_options = [{k: decode(v, k) for k, v in specs.from_map(g.options).items()} for g in info.groups] \
                if info.groups else [{} for _ in self.param_groups]

    @property
    def current_step(self) -> int:
        """Steps the hosted optimizer has taken."""
        return self._step

    def pull(self) -> None:
        """Overwrites the local parameters with the hosted ones."""
        self._step = pull(self._conn, self.session, self._params, self._md)

    # -- stepping ----------------------------------------------------------------------------------
    def step(self, closure: Callable | None = None) -> Any:  # type: ignore[override]
        if closure is None:
            return self._conn.call(self._push)
        attempt = [0]

        def once() -> Any:
            if attempt[0]:  # a retried step: the local parameters may hold an evaluation point
                self._step = pull(self._conn, self.session, self._params, self._md)
            attempt[0] += 1
            return self._closure_step(closure)
        return self._conn.call(once)

    # -- parameter groups: fixed parameters, options sent when they change ---------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if self._params is not None:
            raise ValueError("the parameter groups of a RemoteOptimizer are fixed when its session is created")
        self.param_groups.append(new_param_group(param_group, self.defaults, self.param_groups))

    def _group_options(self) -> list[dict[str, Any]]:
        """The explicit options of each group (what the user, or an LR scheduler, set)."""
        return [g.options() for g in self.param_groups]

    def _groups_proto(self, options: list[dict[str, Any]]) -> list[pb.ParamGroup]:
        return [pb.ParamGroup(params=idx, options=specs.to_map({k: encode(v, k) for k, v in opts.items()}))
                for idx, opts in zip(self._group_params, options)]

    def state_dict(self) -> dict[str, Any]:
        """The groups' explicit options (the optimizer's state lives on the server)."""
        return {"state": {}, "param_groups": [{**opts, "params": idx}
                                              for idx, opts in zip(self._group_params, self._group_options())]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Sets the groups' explicit options from :meth:`state_dict` (sent with the next step)."""
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups) or any(len(a["params"]) != len(b["params"])
                                                       for a, b in zip(saved, self.param_groups)):
            raise ValueError("the state dict's parameter groups do not match this optimizer's")
        for sg, g in zip(saved, self.param_groups):
            g.set_options(sg)

    def _start(self, mode: int, **kw: Any) -> pb.StepRequest:
        """The step's start; it carries the groups' options when they changed since the last step
        (e.g. an LR scheduler set a new ``lr``) and names the parameters with ``requires_grad=False``,
        which the hosted optimizer skips as ``tz.Optimizer`` does."""
        options = self._group_options()
        try:
            changed = bool(options != self._sent_options)
        except RuntimeError:  # (tensor values compared element-wise)
            changed = True
        if changed:
            kw["groups"] = self._groups_proto(options)
        self._sending = options
        frozen = [i for i, p in enumerate(self._params) if not p.requires_grad]
        return pb.StepRequest(start=pb.StepStart(session=self.session, step=self._step, rank=self.rank, mode=mode,
                                                 frozen=frozen, **kw))

    def _finish(self, responses: Iterator[Any], done: pb.StepDone) -> Any:
        read_params_into(responses, done, self._params)
        self._step = done.step
        self._sent_options = self._sending
        return decode_loss(done)

    def _push(self) -> Any:
        grads = [p.grad.detach().cpu() if p.grad is not None else torch.zeros_like(p, device="cpu") for p in self._params]

        def requests() -> Iterator[Any]:
            yield self._start(pb.PUSH, grads=layout_of(grads))
            yield from iter_chunks(grads)

        responses = iter(self._conn.stub.Step(requests(), metadata=self._md))
        first = next(responses)
        if is_chunk(first) or first.WhichOneof("msg") != "done":
            raise RuntimeError("protocol error: expected the step's result")
        try:
            return self._finish(responses, first.done)
        except BaseException:
            # the server may stream new parameters while it steps (element-wise chains); a step
            # that fails part-way is undone there, so the local copy is brought back in line
            try:
                self._step = pull(self._conn, self.session, self._params, self._md)
            except Exception:
                pass
            raise

    def _closure_step(self, closure: Callable) -> Any:
        fn = normalize_closure(closure, self._params)
        assert fn is not None
        outbox: queue.Queue = queue.Queue()
        outbox.put(self._start(pb.CLOSURE))

        def requests() -> Iterator[Any]:
            while True:
                m = outbox.get()
                if m is None:
                    return
                yield m

        call = self._conn.stub.Step(requests(), metadata=self._md)
        responses = iter(call)
        try:
            for msg in responses:
                if is_chunk(msg):
                    raise RuntimeError("protocol error: unexpected data")
                kind = msg.WhichOneof("msg")
                if kind == "done":
                    return self._finish(responses, msg.done)
                c = msg.call
                if not c.at_current:
                    read_params_into(responses, pb.StepDone(params=c.point), self._params)
                if c.backward:
                    with torch.enable_grad():
                        loss = fn(True)
                    grads = [p.grad.detach().cpu() if p.grad is not None else torch.zeros_like(p, device="cpu")
                             for p in self._params]
                    outbox.put(pb.StepRequest(result=pb.EvalResult(index=c.index, loss=loss_to_proto(loss),
                                                                   grads=layout_of(grads))))
                    for chunk in iter_chunks(grads):
                        outbox.put(chunk)
                else:
                    loss = fn(False)
                    outbox.put(pb.StepRequest(result=pb.EvalResult(index=c.index, loss=loss_to_proto(loss))))
            raise RuntimeError("protocol error: the step ended without a result")
        finally:
            outbox.put(None)

    def close(self) -> None:
        self._conn.close()

    def delete_session(self) -> bool:
        """Deletes the hosted session (its state is lost)."""
        rep = self._conn.call(lambda: self._conn.stub.DeleteSession(pb.SessionRef(name=self.session),
                                                                      metadata=self._md))
        return rep.deleted

    def __repr__(self) -> str:
        return f"RemoteOptimizer(session={self.session!r}, address={self._conn.address!r}, step={self._step})"
