"""Fewer round trips for cheap evaluations: ``prefetch`` (an ask fetches spare trials, held by the
client) and ``tell(wait=False)`` (a tell rides with the next call). The study must come out the same
as with one round trip per call, a prefetching client must not starve a waiting one, and a refused
tell must be reported, not lost."""
from __future__ import annotations

import threading
import time

import pytest
import torch

import torchzero as tz
import tz_client
import tz_server
from tz_client.errors import InvalidArgument


def f(x: torch.Tensor) -> float:
    return float(((x - 0.3) ** 2).sum())


def spsa() -> list:
    return [tz.m.SPSA(), tz.m.LR(1e-2)]


def four_trial_study(client: tz_client.Client) -> tz_client.Study:
    """A study whose steps have four trials (RFDM, 2 samples, central), prefetching 3."""
    return client.create_study("s", torch.zeros(3), [tz.m.RandomizedFDM(n_samples=2), tz.m.LR(1e-2)], seed=0,
                               prefetch=3)


def count_roundtrips(study: tz_client.Study) -> dict:
    """Counts the study's ask/tell round trips (wraps its channel's ``roundtrip``)."""
    seen = {"n": 0}
    inner = study._asktell.roundtrip

    def counted(request):
        seen["n"] += 1
        return inner(request)
    study._asktell.roundtrip = counted
    return seen


def test_prefetch_and_unwaited_tells_give_the_same_study_with_half_the_round_trips():
    with tz_server.serve() as srv:
        c = tz_client.Client(srv.address)
        strict = c.create_study("strict", torch.zeros(4), spsa(), seed=3)
        fast = c.create_study("fast", torch.zeros(4), spsa(), seed=3, prefetch=1)
        trips = count_roundtrips(fast)
        seen_strict, seen_fast = [], []
        for _ in range(40):
            t = strict.ask()
            strict.tell(t, f(t.params))
            seen_strict.append((t.id, t.params.clone()))
            t = fast.ask()
            assert fast.tell(t, f(t.params), wait=False) is None
            seen_fast.append((t.id, t.params.clone()))
        fast.flush()
        assert [i for i, _ in seen_fast] == [i for i, _ in seen_strict]
        for (_, a), (_, b) in zip(seen_fast, seen_strict):
            assert torch.equal(a, b)
        assert trips["n"] == 21  # one per SPSA step (two trials), and the flush
        assert fast.info().evaluations == strict.info().evaluations == 40
        (p1, l1), (p2, l2) = fast.best(), strict.best()
        assert l1 == l2 and torch.equal(p1, p2)
        c.close()


def test_tell_and_ask_hands_out_prefetched_trials_first():
    with tz_server.serve() as srv:
        c = tz_client.Client(srv.address)
        study = four_trial_study(c)
        first = study.ask()  # the step has four trials: one handed out, three held
        assert len(study._held) == 3
        nxt = study.tell_and_ask([first], [f(first.params)], n=2)
        assert [t.id for t in nxt] == ["0:1", "0:2"] and len(study._held) == 1
        assert study.info().evaluations == 1
        c.close()


def test_a_prefetching_client_does_not_take_trials_another_client_waits_for():
    with tz_server.serve() as srv:
        holder = tz_client.Client(srv.address, client_id="holder")
        study = holder.create_study("s", torch.zeros(3), spsa(), seed=0)
        both = study.ask(n=2)  # every trial of step 0 is held: the others must wait
        greedy = tz_client.Client(srv.address, client_id="greedy").open_study("s", prefetch=5)
        patient = tz_client.Client(srv.address, client_id="patient").open_study("s")
        got: dict[str, list] = {}

        def ask(name: str, s: tz_client.Study) -> None:
            got[name] = [s.ask()] + list(s._held)

        threads = [threading.Thread(target=ask, args=("patient", patient))]
        threads[0].start()
        session = srv.backend.get("s")
        deadline = time.monotonic() + 10
        while session._waiting < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        threads.append(threading.Thread(target=ask, args=("greedy", greedy)))
        threads[1].start()
        while session._waiting < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert session._waiting == 2
        study.tell(both, [f(t.params) for t in both])  # step 1 makes two trials
        for t in threads:
            t.join(timeout=10)
        assert len(got["patient"]) == 1 and len(got["greedy"]) == 1
        assert {got["patient"][0].id, got["greedy"][0].id} == {"1:0", "1:1"}
        # with nobody waiting, the prefetching client gets the spare trials
        study.tell(got["patient"] + got["greedy"], [1.0, 2.0])
        greedy.ask()
        assert [t.id for t in greedy._held] == ["2:1"]
        for cl in (holder, greedy.client, patient.client):
            cl.close()


def test_a_refused_unwaited_tell_is_raised_by_the_next_call_and_the_others_are_applied():
    with tz_server.serve() as srv:
        c = tz_client.Client(srv.address)
        study = four_trial_study(c)
        a, b, d = study.ask(), study.ask(), study.ask()
        study.tell(a, f(a.params), wait=False)
        study.tell(b, float("nan"), wait=False)  # refused: the study does not allow non-finite losses
        study.tell(d, f(d.params), wait=False)
        with pytest.raises(InvalidArgument, match=r"without waiting.*0:1"):
            study.tell(study.ask(), 1.0)  # the held fourth trial; its tell is not made
        assert study.info().evaluations == 2  # a and d
        study.tell(b, f(b.params))
        assert study.info().evaluations == 3
        c.close()


def test_closing_the_client_sends_unwaited_tells():
    with tz_server.serve() as srv:
        c = tz_client.Client(srv.address)
        study = c.create_study("s", torch.zeros(3), spsa(), seed=0)
        t = study.ask()
        study.tell(t, f(t.params), wait=False)
        assert srv.backend.get("s").evaluations == 0  # not sent yet
        c.close()
        with tz_client.Client(srv.address) as c2:
            assert c2.open_study("s").info().evaluations == 1


def test_best_and_info_send_unwaited_tells_first():
    with tz_server.serve() as srv, tz_client.Client(srv.address) as c:
        study = c.create_study("s", torch.zeros(3), spsa(), seed=0)
        t = study.ask()
        study.tell(t, 0.25, wait=False)
        params, loss = study.best()
        assert loss == 0.25 and torch.equal(params, t.params)
        study.tell(study.ask(), 1.0, wait=False)
        assert study.info().evaluations == 2


def test_prefetch_must_not_be_negative():
    with tz_server.serve() as srv, tz_client.Client(srv.address) as c:
        with pytest.raises(ValueError, match="prefetch"):
            c.create_study("s", torch.zeros(3), spsa(), prefetch=-1)


def test_closing_hands_back_prefetched_trials_to_other_clients():
    with tz_server.serve(ask_timeout=600.0) as srv:
        a = tz_client.Client(srv.address, client_id="a")
        study = four_trial_study(a)
        first = study.ask()
        held = [t.id for t in study._held]
        assert len(held) == 3
        a.close()  # hands back the three held trials; "first" stays with a until its deadline
        with tz_client.Client(srv.address, client_id="b") as b:
            got = b.open_study("s").ask(n=4, wait=0.0)
            assert [t.id for t in got] == held
            assert first.id not in [t.id for t in got]


def test_unwaited_tells_are_kept_when_the_call_carrying_them_fails_for_another_reason():
    with tz_server.serve() as srv:
        c = tz_client.Client(srv.address, retry_timeout=0.5)
        study = c.create_study("s", torch.zeros(3), spsa(), seed=0)
        t = study.ask()
        study.tell(t, f(t.params), wait=False)
        srv.stop()  # the next call fails: UNAVAILABLE
        with pytest.raises(tz_client.errors.Unavailable):
            study.ask()
        assert [i.id for i in study._unsent] == [t.id]
        c.conn.forget_on_close(study.close)  # nothing to send them to
        c.close()
