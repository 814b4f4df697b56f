"""Ask/tell studies: :class:`Study` and :class:`Trial`."""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from torchzero.core.evaluation import BatchEvaluator, FunctionEvaluator

from ._proto.torchzero_service.v1 import service_pb2 as pb
from .asktell import AskTellChannel
from .checks import integer, seconds
from .codec import CodecError, from_proto, loss_from_proto, loss_to_float, rows_from_protos, to_proto, write_loss
from .errors import InvalidArgument, ServiceError, StudyFinished
from .sessions import SessionInfo, session_metadata

if TYPE_CHECKING:
    from .client import Client

ASK_WAIT = 10.0
"""Seconds one Ask call waits on the server for a trial to become available."""


@dataclass
class Trial:
    """A point to evaluate: ``params`` is shaped like the study's ``x0`` (a tensor or a list)."""

    id: str
    params: Any
    needs_grad: bool

    @property
    def step(self) -> int:
        return int(self.id.split(":", 1)[0])


class Study:
    """A hosted ask/tell study (from :meth:`Client.create_study` / :meth:`Client.open_study`).

    The optimizer runs on the server; every evaluation it needs becomes a trial. Any number of
    clients may ask and tell at once; a trial nobody tells within the study's ``ask_timeout`` is
    handed out again, and a repeated or late tell is acknowledged and ignored.

    Two ways to spend fewer round trips when evaluations are cheap:

    * ``prefetch=k``: an ask also fetches up to ``k`` more trials, kept here and handed out by the
      next asks without a round trip. The server hands out extra trials only while no other
      client is waiting for one, so a prefetching client does not starve the others;
      :meth:`close` (or closing the client) hands back the trials still held.
    * ``tell(..., wait=False)``: the tell is kept here and sent with the next call on the study
      that goes to the server (an ask that finds no prefetched trial, a tell, :meth:`best`,
      :meth:`info`, :meth:`flush`, :meth:`close`, closing the client), in the same message where
      it can. If the server refuses one of these tells, that call raises the refusal and is not
      made; the other tells are applied all the same. Until then the server does not know the
      result: if this process dies, the trial is handed out again after the study's
      ``ask_timeout``.
    """

    def __init__(self, client: "Client", info: SessionInfo, session_token: str | None = None, prefetch: int = 0):
        self.client = client
        self.name = info.name
        self.shapes = info.shapes
        self.dtypes = info.dtypes
        self.is_list = bool(info.user_attrs.get("x0_is_list", len(info.shapes) != 1))
        self._info = info
        self._resume = True
        self._conn = client.conn
        self._token = session_token
        self._metadata = session_metadata(client.conn, session_token)
        self._asktell = AskTellChannel(client.conn, self._metadata)
        if prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch}")
        self.prefetch = int(prefetch)
        self._held: deque[Trial] = deque()  # prefetched trials, handed out by the next asks
        self._unsent: list[pb.TellItem] = []  # tells made with wait=False, sent with the next call
        self._unsent_lock = threading.Lock()
        self._closing = False  # close() is registered to run when the client closes

    # -- helpers ---------------------------------------------------------------------------------
    def _decode(self, msgs: Sequence[pb.Trial]) -> list[Trial]:
        """Trials from their messages; each parameter of all of them decoded at once."""
        if not msgs:
            return []
        n = len(msgs[0].params)
        if any(len(m.params) != n for m in msgs):
            raise CodecError("the server sent trials with different numbers of tensors")
        where = [f"trial {m.id}" for m in msgs]
        cols = [rows_from_protos([m.params[j] for m in msgs], where) for j in range(n)]
        return [Trial(m.id, [c[i] for c in cols] if self.is_list else cols[0][i], m.needs_grad)
                for i, m in enumerate(msgs)]

    def _send(self, request: pb.TellRequest) -> pb.TellReply:
        """One tell and/or ask over this thread's ask/tell stream, carrying the tells made with
        ``wait=False`` too; retried while the server is unavailable (a retried ask first takes back
        the trials a lost reply handed out)."""
        with self._unsent_lock:
            unsent, self._unsent = self._unsent, []
        if unsent:
            own = list(request.items)
            del request.items[:]
            request.items.extend(unsent + own)
            try:
                reply = self._roundtrip(request)
            except InvalidArgument:
                del request.items[:]
                request.items.extend(own)
                self._tell_each(unsent)  # finds the refused tell (and applies the others)
                reply = self._roundtrip(request)  # they were fine: the call's own error again
            except ServiceError:  # not about the tells (unavailable, not found...): kept for the next call
                with self._unsent_lock:
                    self._unsent[:0] = unsent
                raise
            reply.accepted = max(0, reply.accepted - len(unsent))  # counts of this call's own tells
            return reply
        return self._roundtrip(request)

    def _roundtrip(self, request: pb.TellRequest) -> pb.TellReply:
        attempt = [0]

        def once() -> pb.TellReply:
            if attempt[0] and request.HasField("then_ask"):
                request.then_ask.resume = True
            attempt[0] += 1
            return self._asktell.roundtrip(request)
        return self._conn.call(once)

    def _tell_each(self, items: list[pb.TellItem]) -> None:
        first: InvalidArgument | None = None
        for item in items:
            try:
                self._roundtrip(pb.TellRequest(session=self.name, client_id=self.client.client_id, items=[item]))
            except InvalidArgument as e:
                first = first or InvalidArgument(e.code, f"a tell sent without waiting was refused: {e.details}")
        if first is not None:
            raise first

    def _ask_request(self, n: int, wait: float) -> pb.AskRequest:
        return pb.AskRequest(session=self.name, client_id=self.client.client_id, n=n, wait=wait, resume=self._resume,
                             spare=self.prefetch)

    def _trials(self, rep: pb.AskReply, n: int) -> list[Trial]:
        """The first ``n`` trials of a reply; the rest are held for the next asks."""
        held = {t.id for t in self._held}
        trials = self._decode([t for t in rep.trials if t.id not in held])  # (a resumed ask repeats them)
        if len(trials) > n:
            self._held.extend(trials[n:])
            self._close_with_client()
        return trials[:n]

    def _close_with_client(self) -> None:
        if not self._closing:
            self._closing = True
            self._conn.on_close(self.close)

    def _take_held(self, n: int) -> list[Trial]:
        out: list[Trial] = []
        while len(out) < n:
            try:
                out.append(self._held.popleft())
            except IndexError:
                break
        return out

    def _item(self, trial: Any, loss: Any, grad: Any) -> pb.TellItem:
        tid = trial.id if isinstance(trial, Trial) else str(trial)
        item = pb.TellItem(id=tid)
        write_loss(item.loss, loss)
        if grad is not None:
            gs = list(grad) if self.is_list else [grad]
            item.grads.extend(to_proto(torch.as_tensor(g).detach()) for g in gs)
        return item

    # -- ask / tell ------------------------------------------------------------------------------
    def ask(self, n: int | None = None, *, wait: float = ASK_WAIT) -> Any:
        """One :class:`Trial` (waiting until one is available), or with ``n`` a list of every
        pending trial up to ``n`` (possibly empty if none came within ``wait`` seconds).
        Prefetched trials are handed out first, without a round trip.

        Raises :class:`~tz_client.errors.StudyFinished` when the optimizer has terminated.
        """
        k = 1 if n is None else integer(n, "ask: n", 1)
        wait = seconds(wait, "ask: wait")
        while True:
            trials = self._take_held(k)
            if not trials:
                req = pb.TellRequest(session=self.name, client_id=self.client.client_id,
                                     then_ask=self._ask_request(k, wait))
                rep = self._send(req).asked
                self._resume = False
                trials = self._trials(rep, k)
                if not trials and rep.finished:
                    raise StudyFinished(f"study {self.name} has finished")
            if n is not None:
                return trials
            if trials:
                return trials[0]

    def tell(self, trial_or_id: Any, loss: Any, grad: Any = None, *, wait: bool = True) -> tuple[int, int] | None:
        """Tells the loss (and gradient, for trials with ``needs_grad``) of a trial.

        Given lists of trials, losses (and grads), tells them all in one round trip. Returns
        ``(accepted, ignored)``: repeated or late tells are ignored. With ``wait=False`` the tell is
        sent without waiting for its acknowledgement and None is returned (see the class notes).
        """
        request = self._tell_request(trial_or_id, loss, grad)
        if not wait:
            with self._unsent_lock:
                self._unsent.extend(request.items)
            self._close_with_client()
            return None
        rep = self._send(request)
        return rep.accepted, rep.ignored

    def release(self, trials: Sequence[Any]) -> int:
        """Hands back trials (or ids) this client holds but will not evaluate: they go to the next
        ask at once instead of after the study's ``ask_timeout``. Returns how many were open."""
        ids = [t.id if isinstance(t, Trial) else str(t) for t in trials]
        return self._send(pb.TellRequest(session=self.name, client_id=self.client.client_id, release=ids)).released

    def flush(self) -> None:
        """Sends the tells made with ``wait=False`` (raising if the server refuses one)."""
        if self._unsent:
            self._send(pb.TellRequest(session=self.name, client_id=self.client.client_id))

    def close(self) -> None:
        """Sends the tells made with ``wait=False`` and hands back the prefetched trials not
        handed out yet (others may have them at once). Closing the client does this too; the
        study can still be used afterwards."""
        release = [t.id for t in self._take_held(len(self._held))]
        if self._unsent or release:
            self._send(pb.TellRequest(session=self.name, client_id=self.client.client_id, release=release))
        if self._closing:
            self._closing = False
            self._conn.forget_on_close(self.close)

    def _tell_request(self, trial_or_id: Any, loss: Any, grad: Any) -> pb.TellRequest:
        if isinstance(trial_or_id, (list, tuple)):
            losses = list(loss)
            grads = list(grad) if grad is not None else [None] * len(trial_or_id)
            if not len(trial_or_id) == len(losses) == len(grads):
                raise ValueError("tell: trials, losses and grads must have the same length")
            items = [self._item(t, l, g) for t, l, g in zip(trial_or_id, losses, grads)]
        else:
            items = [self._item(trial_or_id, loss, grad)]
        return pb.TellRequest(session=self.name, client_id=self.client.client_id, items=items)

    def tell_and_ask(self, trials: Sequence[Any], losses: Sequence[Any], grads: Sequence[Any] | None = None,
                     n: int = 1, wait: float = ASK_WAIT) -> list[Trial]:
        """Tells results and asks for up to ``n`` new trials in one round trip (prefetched trials,
        if any, are handed out instead of asking)."""
        n, wait = integer(n, "tell_and_ask: n", 1), seconds(wait, "tell_and_ask: wait")
        req = self._tell_request(list(trials), list(losses), grads)
        held = self._take_held(n)
        if held:
            self._send(req)
            return held
        req.then_ask.CopyFrom(self._ask_request(n, wait))
        rep = self._send(req)
        self._resume = False
        out = self._trials(rep.asked, n)
        if not out and rep.asked.finished:
            raise StudyFinished(f"study {self.name} has finished")
        return out

    def best(self) -> tuple[Any, float] | None:
        """``(params, loss)`` of the best evaluation told so far (None before the first)."""
        self.flush()
        rep = self._conn.call(lambda: self._conn.stub.Best(pb.SessionRef(name=self.name), metadata=self._metadata))
        if not rep.found:
            return None
        xs = [from_proto(t) for t in rep.params]
        return (xs if self.is_list else xs[0]), loss_to_float(loss_from_proto(rep.loss))

    def info(self) -> SessionInfo:
        self.flush()
        return self.client.session(self.name, self._token)

    # -- the loop, run for the user --------------------------------------------------------------
    def optimize(self, fn: Callable[[Any], Any] | None, n_evals: int, *, n_workers: int = 1,
                 evaluator: BatchEvaluator | None = None, progress: bool = True, batch: int = 64) -> tuple[Any, float] | None:
        """Evaluates ``n_evals`` trials with ``fn(params) -> loss`` (or ``evaluator``) and tells them.

        Args:
            fn: the objective; receives params shaped like ``x0``. Gradients, for trials that
                need them, come from autograd through ``fn``.
            n_evals: evaluations to make (in this call).
            n_workers: threads asking and evaluating concurrently (each asks for its own trials).
            evaluator: a :class:`~torchzero.core.evaluation.BatchEvaluator` evaluating each batch of
                trials at once (points are lists of tensors); replaces ``fn``.
            progress: show a tqdm progress bar with the best loss.
            batch: trials asked for per round trip (all pending ones up to this).

        Returns the study's best ``(params, loss)``.
        """
        if fn is None and evaluator is None:
            raise ValueError("optimize needs fn or evaluator")
        n_evals = integer(n_evals, "optimize: n_evals", 0)
        n_workers = integer(n_workers, "optimize: n_workers", 1)
        batch = integer(batch, "optimize: batch", 1)
        if evaluator is None:
            assert fn is not None
            evaluator = FunctionEvaluator((lambda xs: fn(xs)) if self.is_list else (lambda xs: fn(xs[0])))
        from tqdm.auto import tqdm
        bar = tqdm(total=n_evals, disable=not progress, desc=f"study {self.name}", unit="eval")
        lock = threading.Lock()
        state = {"left": n_evals, "best": float("inf")}
        errors: list[BaseException] = []

        def take(k: int) -> int:
            with lock:
                k = min(k, state["left"])
                state["left"] -= k
                return k

        def give_back(k: int) -> None:
            if k > 0:
                with lock:
                    state["left"] += k

        def worker(wid: int) -> None:
            sub = self if n_workers == 1 else Study(_SubClient(self.client, wid), self._info, self._token)
            try:
                k = take(batch)
                trials: list[Trial] = []
                while k and not trials:
                    trials = sub.ask(n=k)
                give_back(k - len(trials))
                while trials:
                    losses, grads = _evaluate(evaluator, trials, sub.is_list)
                    with lock:
                        state["best"] = min([state["best"], *(loss_to_float(l) for l in losses)])
                        bar.update(len(trials))
                        bar.set_postfix(best=f"{state['best']:.6g}", refresh=False)
                    k = take(batch)
                    if not k:
                        sub.tell(trials, losses, grads)
                        return
                    trials = sub.tell_and_ask(trials, losses, grads, n=k)
                    while not trials:
                        trials = sub.ask(n=k)
                    give_back(k - len(trials))
            except StudyFinished:
                pass
            except BaseException as e:
                errors.append(e)
                try:  # the trials it held go to the next ask at once, not after the ask timeout
                    sub.release(trials)
                except Exception:
                    pass
            finally:
                if sub is not self:  # its stream would hold a server thread until the client closes
                    sub._asktell.close()

        try:
            if n_workers == 1:
                worker(0)
            else:
                threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n_workers)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        finally:
            bar.close()
        if errors:
            raise errors[0]
        return self.best()


class _SubClient:
    """The same connection under a per-worker client id."""

    def __init__(self, client: Any, wid: int):
        self.conn = client.conn
        self.client_id = f"{client.client_id}/{wid}"
        self.session = client.session


def _evaluate(evaluator: BatchEvaluator, trials: list[Trial], is_list: bool) -> tuple[list[Any], list[Any] | None]:
    points = [t.params if is_list else [t.params] for t in trials]
    need = [t.needs_grad for t in trials]
    losses: list[Any] = [None] * len(trials)
    grads: list[Any] = [None] * len(trials)
    for flag in (False, True):
        idx = [i for i, n in enumerate(need) if n == flag]
        if not idx:
            continue
        res = evaluator.evaluate_batch([points[i] for i in idx], flag)
        for i, r in zip(idx, res):
            losses[i] = r.loss.detach() if isinstance(r.loss, torch.Tensor) else r.loss
            if flag:
                grads[i] = r.grads if is_list else r.grads[0]
    return losses, (grads if any(need) else None)
