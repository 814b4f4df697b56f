"""Thread hand-offs of a hosted study: the stepping thread is woken once per batch of trials (by
the tell that answers the last one), askers only when trials are added or the study ends."""
from __future__ import annotations

import threading

import torch

import torchzero as tz
from tz_client._proto.torchzero_service.v1 import service_pb2 as pb
from tz_client.codec import from_proto, loss_to_proto
from tz_server.sessions.config import STUDY, SessionConfig
from tz_server.sessions.study import StudySession


class CountingCondition(threading.Condition):
    def __init__(self, lock):
        super().__init__(lock)
        self.wakeups = 0

    def wait(self, timeout=None):
        out = super().wait(timeout)
        self.wakeups += 1
        return out


def _study(modules, name: str, journal=()) -> StudySession:
    cfg = SessionConfig(name=name, kind=STUDY, modules=[tz.to_spec(m) for m in modules], seed=0)
    return StudySession(cfg, [torch.zeros(4)], journal=journal)


def _loss(t: pb.Trial) -> pb.TellItem:
    x = from_proto(t.params[0])
    return pb.TellItem(id=t.id, loss=loss_to_proto(float(((x - 0.5) ** 2).sum())))


def test_step_thread_woken_once_per_batch():
    s = _study([tz.m.RandomizedFDM(n_samples=8), tz.m.LR(1e-2)], "wakeups")
    try:
        with s.cond:
            old = s.step_cond
            s.step_cond = CountingCondition(s.lock)
        # the step may already wait on the old condition: answer its batch and wake it there too
        rep = s.ask("c", 16, 10.0)
        assert len(rep.trials) == 16
        s.tell([_loss(t) for t in rep.trials])
        with s.cond:
            old.notify_all()
        rep = s.ask("c", 16, 10.0)
        for step in range(1, 4):
            assert len(rep.trials) == 16 and rep.step == step
            before = s.step_cond.wakeups
            for t in rep.trials:  # one tell per trial: only the last one wakes the step
                assert s.tell([_loss(t)]) == (1, 0)
            rep = s.ask("c", 16, 10.0)  # waits until the next step has added its trials
            assert rep.step == step + 1
            assert s.step_cond.wakeups - before <= 1
    finally:
        s.close()


def test_early_answers_do_not_stall_the_step():
    """Answers replayed from a journal (told before their trials exist) complete the step at once."""
    local = _study([tz.m.SPSA(), tz.m.LR(1e-2)], "early-a")
    try:
        rep = local.ask("c", 2, 10.0)
        items = [_loss(t) for t in rep.trials]
        local.tell(items)
        nxt = local.ask("c", 2, 10.0)
        assert nxt.step == 1
    finally:
        local.close()
    replayed = _study([tz.m.SPSA(), tz.m.LR(1e-2)], "early-b", journal=items)
    try:
        rep = replayed.ask("c", 2, 10.0)
        assert rep.step == 1 and [t.id for t in rep.trials] == [t.id for t in nxt.trials]
        assert replayed.evaluations == 2
    finally:
        replayed.close()
