"""The gRPC servicer: parses and checks requests, then calls the backend's sessions."""
from __future__ import annotations

import functools
import inspect
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import torch

from tz_client import specs
from tz_client._proto.torchzero_service.v1 import service_pb2 as pb
from tz_client._proto.torchzero_service.v1 import tensor_pb2 as tpb
from tz_client.codec import (CodecError, PayloadReader, from_proto, iter_chunks, layout_of, loss_from_proto, loss_to_proto,
                             nbytes, parse_layout)
from tz_client.wire import STREAMS_FULL, is_chunk
from torchzero.core.spec import SpecError

from .auth import hash_token, session_token_of, token_matches
from .backends.base import Backend, SessionHandle
from .errors import (AlreadyExists, Aborted, FailedPrecondition, InvalidArgument, ResourceExhausted, ServiceError,
                     Unauthenticated)
from .metrics import Metrics
from .stream_guard import StreamGuard
from .sessions.base import decode_options
from .sessions.config import OPTIMIZER, STUDY, SessionConfig
from .streams import feed_payload, payload_chunks, read_payload, to_device
from .validation import check_finite, check_floating_point, check_layout, check_loss, check_name

log = logging.getLogger("tz_server.rpc")

KINDS = {pb.STUDY: STUDY, pb.OPTIMIZER: OPTIMIZER}
KIND_ENUM = {v: k for k, v in KINDS.items()}


def _status(e: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(e, ServiceError):
        return e.code, e.message
    if isinstance(e, (SpecError, CodecError)):
        return grpc.StatusCode.INVALID_ARGUMENT, str(e)
    if isinstance(e, NotImplementedError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(e)
    return grpc.StatusCode.INTERNAL, f"internal error: {type(e).__name__}: {e}"


def rpc(fn: Callable) -> Callable:
    """Maps exceptions to status codes and records latency (unary and streaming responses)."""
    name = fn.__name__

    def fail(self: "Servicer", context: grpc.ServicerContext, e: BaseException, t0: float) -> None:
        code, msg = _status(e)
        if code == grpc.StatusCode.INTERNAL:
            log.exception("%s failed", name)
        self.metrics.observe(name, time.perf_counter() - t0, code.name)
        context.abort(code, msg)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(self: "Servicer", request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            t0 = time.perf_counter()
            try:
                yield from fn(self, request, context)
            except Exception as e:
                fail(self, context, e, t0)
            else:
                self.metrics.observe(name, time.perf_counter() - t0, "OK")
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(self: "Servicer", request: Any, context: grpc.ServicerContext) -> Any:
        t0 = time.perf_counter()
        try:
            out = fn(self, request, context)
        except Exception as e:
            fail(self, context, e, t0)
        self.metrics.observe(name, time.perf_counter() - t0, "OK")
        return out
    return wrapper


class Servicer:
    """Implements every method of ``torchzero_service.v1.TorchZero`` on top of a backend."""

    def __init__(self, backend: Backend, metrics: Metrics, max_params_bytes: int = 16 << 30,
                 sync_timeout: float = 300.0, streams: StreamGuard | None = None):
        self.backend = backend
        self.streams = streams or StreamGuard(limit=32, idle_timeout=30.0)
        self.metrics = metrics
        self.max_params_bytes = max_params_bytes
        self.sync_timeout = sync_timeout

    # -- helpers --------------------------------------------------------------------------------------
    def _session(self, name: str, kind: str | None, context: grpc.ServicerContext) -> SessionHandle:
        s = self.backend.get(name)
        _authorize(s, session_token_of(context) if s.config.token_hash is not None else None)
        if kind is not None and s.kind != kind:
            raise FailedPrecondition(f"session {name!r} is {_a(s.kind)} session; this call needs {_a(kind)} session")
        return s

    def info(self, s: SessionHandle, created: bool = False) -> pb.SessionInfo:
        c = s.config
        best = s.best_loss()
        msg = pb.SessionInfo(
            name=s.name, kind=KIND_ENUM[s.kind], params=layout_of_meta(s.layout),
            modules=specs.modules_to_proto(c.modules), step=s.step, evaluations=s.evaluations, device=c.device,
            workers=c.workers, created=created, state=s.status(), allow_nonfinite=c.allow_nonfinite,
            groups=[pb.ParamGroup(params=g["params"], options=specs.to_map(g.get("options", {})))
                    for g in (s.current_groups() if hasattr(s, "current_groups") else c.groups)],
            user_attrs=specs.to_map(c.user_attrs), protected=c.token_hash is not None,
            sync_timeout=c.sync_timeout, pipelined=c.pipelined, persist_error=s.writes.error)
        if best is not None:
            msg.best_loss = best
        return msg

    # -- sessions --------------------------------------------------------------------------------------
    @rpc
    def CreateSession(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> pb.SessionInfo:
        it = iter(request_iterator)
        first = next(it, None)
        if first is None or is_chunk(first) or first.WhichOneof("msg") != "header":
            raise InvalidArgument("CreateSession: the first message must be the header")
        h = first.header
        config = self._config(h)
        layout = [(s, d) for s, d in parse_layout(h.params, "params")]
        if not layout:
            raise InvalidArgument("a session needs at least one parameter tensor")
        check_floating_point([d for _, d in layout])  # before any payload is read
        total = sum(nbytes(d, s) for s, d in layout)
        if total > self.max_params_bytes:
            raise InvalidArgument(f"parameters take {total} bytes; this server accepts at most {self.max_params_bytes}")
        params = read_payload(it, layout, "params")
        check_finite(params, "params")
        if next(it, None) is not None:
            raise InvalidArgument("CreateSession: unexpected data after the parameters")
        session, created = self.backend.create(config, params, exist_ok=h.exist_ok)
        if not created:  # joining an existing session needs its token, and a token if it has one
            if session.config.token_hash is None and h.session_token:
                raise AlreadyExists(f"session {h.name!r} exists without a session token")
            _authorize(session, h.session_token or session_token_of(context))
        return self.info(session, created)

    def _config(self, h: pb.CreateHeader) -> SessionConfig:
        check_name(h.name)
        kind = KINDS.get(h.kind)
        if kind is None:
            raise InvalidArgument("session kind must be STUDY or OPTIMIZER")
        try:
            modules = [specs.module_from_proto(m) for m in h.modules]
            groups = [{"params": [int(i) for i in g.params], "options": specs.from_map(g.options)} for g in h.groups]
            lower, upper = self._bound(h, "lower"), self._bound(h, "upper")
            user_attrs = specs.from_map(h.user_attrs)
        except (ValueError, TypeError) as e:
            raise InvalidArgument(str(e)) from None
        if not modules:
            raise InvalidArgument("a session needs at least one module")
        if kind == OPTIMIZER and (lower is not None or upper is not None):
            raise InvalidArgument("bounds are for studies (ask/tell)")
        if h.workers > 1 and kind != OPTIMIZER:
            raise InvalidArgument("workers > 1 is for OPTIMIZER sessions")
        if h.ask_timeout < 0 or h.ask_timeout != h.ask_timeout:
            raise InvalidArgument("ask_timeout must be >= 0")
        if not 0 <= h.sync_timeout < float("inf"):
            raise InvalidArgument("sync_timeout must be a finite number >= 0")
        if h.pipelined and kind != OPTIMIZER:
            raise InvalidArgument("pipelined is for OPTIMIZER sessions")
        return SessionConfig(name=h.name, kind=kind, modules=modules, groups=groups, device=h.device,
                             workers=max(1, h.workers), seed=h.seed if h.HasField("seed") else None,
                             lower=lower, upper=upper, ask_timeout=h.ask_timeout,
                             allow_nonfinite=h.allow_nonfinite, user_attrs=user_attrs,
                             token_hash=hash_token(h.session_token) if h.session_token else None,
                             sync_timeout=h.sync_timeout or self.sync_timeout, pipelined=h.pipelined)

    @staticmethod
    def _bound(h: pb.CreateHeader, which: str) -> Any:
        if not h.HasField(which):
            return None
        b = getattr(h, which)
        if b.WhichOneof("value") == "scalar":
            return b.scalar
        return [from_proto(t, f"{which}[{i}]") for i, t in enumerate(b.tensors.tensors)]

    @rpc
    def GetSession(self, request: pb.SessionRef, context: grpc.ServicerContext) -> pb.SessionInfo:
        return self.info(self._session(request.name, None, context))

    @rpc
    def ListSessions(self, request: pb.ListRequest, context: grpc.ServicerContext) -> pb.ListReply:
        token = session_token_of(context)
        return pb.ListReply(sessions=[
            self.info(s) if token_matches(s.config.token_hash, token)
            else pb.SessionInfo(name=s.name, kind=KIND_ENUM[s.kind], protected=True)  # name and kind only
            for s in self.backend.list()])

    @rpc
    def DeleteSession(self, request: pb.SessionRef, context: grpc.ServicerContext) -> pb.DeleteReply:
        try:
            self._session(request.name, None, context)
        except ServiceError as e:
            if e.code == grpc.StatusCode.NOT_FOUND:
                return pb.DeleteReply(deleted=False)
            raise
        return pb.DeleteReply(deleted=self.backend.delete(request.name))

    # -- ask / tell -------------------------------------------------------------------------------------
    @rpc
    def Ask(self, request: pb.AskRequest, context: grpc.ServicerContext) -> pb.AskReply:
        s = self._session(request.session, STUDY, context)
        return s.ask(request.client_id, request.n, request.wait, request.resume, request.spare)

    @rpc
    def Tell(self, request: pb.TellRequest, context: grpc.ServicerContext) -> pb.TellReply:
        return _tell(self._session(request.session, STUDY, context), request)

    @rpc
    def AskTell(self, request_iterator: Iterator[pb.TellRequest], context: grpc.ServicerContext) -> Iterator[pb.TellReply]:
        """Tell / ask messages over one stream; each is counted in the metrics as the unary call it
        replaces (``Tell`` when it tells, else ``Ask``). Streams are bounded by :attr:`streams`."""
        key = self.streams.enter(context)
        if key is None:
            raise ResourceExhausted(STREAMS_FULL)
        try:
            s: SessionHandle | None = None
            for request in _until_cancelled(request_iterator):
                t0 = time.perf_counter()
                self.streams.busy(key, True)
                if s is None or s.name != request.session:
                    s = self._session(request.session, STUDY, context)
                reply = _tell(s, request)
                self.metrics.observe("Tell" if request.items else "Ask", time.perf_counter() - t0, "OK")
                yield reply
                self.streams.busy(key, False)
        finally:
            self.streams.leave(key)

    @rpc
    def Best(self, request: pb.SessionRef, context: grpc.ServicerContext) -> pb.BestReply:
        return self._session(request.name, STUDY, context).best_reply()

    # -- training steps ---------------------------------------------------------------------------------
    @rpc
    def Pull(self, request: pb.SessionRef, context: grpc.ServicerContext) -> Iterator[Any]:
        s = self._session(request.name, None, context)
        params = s.params_snapshot()
        yield pb.StepReply(done=pb.StepDone(step=s.step, params=layout_of(params)))
        yield from payload_chunks(params)

    @rpc
    def Step(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        it = iter(request_iterator)
        first = next(it, None)
        if first is None or is_chunk(first) or first.WhichOneof("msg") != "start":
            raise InvalidArgument("Step: the first message must be `start`")
        start = first.start
        s = self._session(start.session, OPTIMIZER, context)
        prepared = _group_options(s, start.groups), _frozen(s, start.frozen)
        if (start.mode == pb.PUSH and not start.frozen and getattr(s, "can_pipeline", None) is not None
                and s.can_pipeline(start.step)):
            check_layout(start.grads, s.layout, "grads")
            yield from self._pipelined_push(s, start, it, prepared)
            return
        if start.mode == pb.PUSH:
            outcome = self._push(s, start, it, prepared)
        elif start.mode == pb.CLOSURE:
            outcome = yield from self._closure(s, start, it, prepared)
        else:
            raise InvalidArgument("Step: mode must be PUSH or CLOSURE")
        done = pb.StepDone(step=outcome.step, params=layout_of(s.params), replayed=outcome.replayed)
        if outcome.loss is not None:
            done.loss.CopyFrom(loss_to_proto(outcome.loss))
        yield pb.StepReply(done=done)
        yield from payload_chunks(s.params)

    def _loss_of(self, s: SessionHandle, start: pb.StepStart) -> Any:
        if not start.HasField("loss"):
            return None
        loss = loss_from_proto(start.loss, "loss")
        check_loss(loss, "loss", finite=not s.config.allow_nonfinite)
        return loss

    def _pipelined_push(self, s: Any, start: pb.StepStart, it: Iterator[Any], prepared: Any) -> Iterator[Any]:
        """A push stepped piece by piece (:mod:`tz_server.sessions.pieces`): a helper thread reads
        the gradients and steps each piece once it is in; this thread sends the new parameters of
        every finished piece meanwhile. The reply's header comes first, as for any step."""
        loss = self._loss_of(s, start)
        bufs = s.take_buffers()
        arrived = feed_payload(it, PayloadReader(bufs, "grads"), "grads")
        out: queue.Queue = queue.Queue()

        def run() -> None:
            try:
                out.put(("ok", _step_with(s, prepared, lambda: s.pipelined_push(start.step, bufs, arrived, out.put,
                                                                                  loss))))
            except BaseException as e:  # handed to the RPC thread
                out.put(("error", e))
            finally:
                s.return_buffers(bufs)

        threading.Thread(target=run, name=f"tz-push-{s.name}", daemon=True).start()
        done = pb.StepDone(step=start.step + 1, params=layout_of(s.params))
        if loss is not None:
            done.loss.CopyFrom(loss_to_proto(loss))
        yield pb.StepReply(done=done)
        sent = 0
        while True:
            item = out.get()
            if isinstance(item, tuple):
                if item[0] == "error":
                    raise item[1]
                return
            yield from iter_chunks(s.params, start=sent, end=item)
            sent = item

    def _push(self, s: SessionHandle, start: pb.StepStart, it: Iterator[Any], prepared: Any) -> Any:
        check_layout(start.grads, s.layout, "grads")
        take = getattr(s, "take_buffers", None)
        bufs = take() if take is not None else None
        try:
            grads = read_payload(it, s.layout, "grads", bufs)
            if not s.config.allow_nonfinite:
                check_finite(grads, "grads")
            loss = self._loss_of(s, start)
            grads = to_device(grads, _input_device(s))
            return _step_with(s, prepared, lambda: s.push(start.step, start.rank, grads, loss))
        finally:
            if bufs is not None:
                s.return_buffers(bufs)

    def _closure(self, s: SessionHandle, start: pb.StepStart, it: Iterator[Any], prepared: Any) -> Any:
        """Runs the step on a helper thread; its evaluation calls go out through this stream."""
        out: queue.Queue = queue.Queue()
        device = _input_device(s)
        counter = [0]
        finite = not s.config.allow_nonfinite

        def evaluate(point: list[torch.Tensor] | None, backward: bool) -> tuple[Any, list[torch.Tensor] | None]:
            index = counter[0]
            counter[0] += 1
            call = pb.EvalCall(index=index, backward=backward, at_current=point is None)
            if point is not None:
                call.point.CopyFrom(layout_of(point))
            out.put(pb.StepReply(call=call))
            if point is not None:
                for c in payload_chunks(point):
                    out.put(c)
            msg = next(it, None)
            if msg is None:
                raise Aborted("the client closed the stream during a closure step")
            if is_chunk(msg) or msg.WhichOneof("msg") != "result" or msg.result.index != index:
                raise InvalidArgument(f"expected the result of evaluation {index}")
            r = msg.result
            loss = loss_from_proto(r.loss, f"evaluation {index}: loss", device)
            check_loss(loss, f"evaluation {index}", finite)
            grads = None
            if backward:
                check_layout(r.grads, s.layout, f"evaluation {index}: grads")
                grads = read_payload(it, s.layout, f"evaluation {index}: grads")
                if finite:
                    check_finite(grads, f"evaluation {index}: grads")
                grads = to_device(grads, device)
            elif r.grads.tensors:
                raise InvalidArgument(f"evaluation {index}: gradients sent but not asked for")
            return loss, grads

        def run() -> None:
            try:
                out.put(("ok", _step_with(s, prepared, lambda: s.closure_step(start.step, evaluate))))
            except BaseException as e:  # handed to the RPC thread
                out.put(("error", e))

        threading.Thread(target=run, name=f"tz-closure-{s.name}", daemon=True).start()
        while True:
            item = out.get()
            if isinstance(item, tuple) and item and item[0] in ("ok", "error"):
                if item[0] == "error":
                    raise item[1]
                return item[1]
            yield item


def _group_options(s: Any, groups: Any) -> list[dict[str, Any]] | None:
    """The parameter-group options a step start carries (``StepStart.groups``), decoded and checked
    against the session's groups; None when it carries none."""
    if not groups:
        return None
    indices = s.group_indices()
    if len(groups) != len(indices):
        raise InvalidArgument(f"groups: the session has {len(indices)} parameter group(s), got {len(groups)}")
    out = []
    for gi, (g, idx) in enumerate(zip(groups, indices)):
        if list(g.params) != idx:
            raise InvalidArgument(f"groups[{gi}]: parameters {list(g.params)[:8]} are not the session's group "
                                  f"({idx[:8]})")
        try:
            raw = specs.from_map(g.options)
        except (ValueError, TypeError) as e:
            raise InvalidArgument(f"groups[{gi}]: {e}") from None
        out.append(decode_options(raw, f"groups[{gi}]"))
    return out


def _frozen(s: Any, frozen: Any) -> list[int]:
    """The frozen parameter indices a step start carries (``StepStart.frozen``), checked."""
    idx = [int(i) for i in frozen]
    if len(set(idx)) != len(idx) or any(not 0 <= i < len(s.layout) for i in idx):
        raise InvalidArgument(f"frozen: bad or repeated parameter index in {idx[:16]}")
    return idx


def _step_with(s: Any, prepared: tuple[list[dict[str, Any]] | None, list[int]], step: Callable[[], Any]) -> Any:
    """``step()`` with the parameter-group options and the frozen parameters of the step start set
    first; if the step fails they are put back (a refused or undone step leaves no trace)."""
    options, frozen = prepared
    previous = s.set_group_options(options) if options is not None else None
    was_frozen = s.set_frozen(frozen)
    try:
        return step()
    except BaseException:
        if previous is not None:
            s.set_group_options(previous)
        s.set_frozen(was_frozen)
        raise


def _until_cancelled(requests: Iterator[Any]) -> Iterator[Any]:
    """The requests of a stream, ending quietly when the client cancels it (how a client closes
    its long-lived ask/tell stream)."""
    it = iter(requests)
    while True:
        try:
            yield next(it)
        except StopIteration:
            return
        except grpc.RpcError:
            return


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _tell(s: SessionHandle, request: pb.TellRequest) -> pb.TellReply:
    """A tell, then the ask in ``then_ask`` if there is one (either may be empty)."""
    reply = pb.TellReply()
    if request.items:
        reply.accepted, reply.ignored = s.tell(request.items)
    if request.release:
        reply.released = s.release(request.client_id, request.release)
    if request.HasField("then_ask"):
        a = request.then_ask
        reply.asked.CopyFrom(s.ask(a.client_id or request.client_id, a.n, a.wait, a.resume, a.spare))
    return reply


def _authorize(s: SessionHandle, token: str | None) -> None:
    """Raises UNAUTHENTICATED unless ``token`` opens ``s`` (sessions without a token are open)."""
    if not token_matches(s.config.token_hash, token):
        raise Unauthenticated(f"session {s.name!r} needs its session token (metadata tz-session-token)"
                              if not token else f"wrong session token for session {s.name!r}")


def _input_device(s: SessionHandle) -> torch.device:
    """Where incoming tensors go: the session's device, or where its handle wants them (a Ray
    session's shards may have GPUs this process does not)."""
    return torch.device(getattr(s, "input_device", None) or s.config.device)


def layout_of_meta(layout: list[tuple[tuple[int, ...], torch.dtype]]) -> tpb.Layout:
    from tz_client.codec import dtype_name
    return tpb.Layout(tensors=[tpb.TensorMeta(dtype=dtype_name(d), shape=list(sh)) for sh, d in layout])
