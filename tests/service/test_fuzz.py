"""Random bad input on every RPC: valid messages with fields replaced by extreme or malformed
values (huge and negative numbers, NaN, odd strings, unknown enum values, wrong-length bytes,
extra or missing repeated entries). Every call must end with OK or a status that names the
problem, never INTERNAL or UNKNOWN, and the sessions it touched must keep working."""
from __future__ import annotations

import random
from collections.abc import Callable

import grpc
import pytest
import torch
from google.protobuf.descriptor import FieldDescriptor as FD

import torchzero as tz
import tz_client
from tz_client import RemoteOptimizer, specs
from tz_client._proto.torchzero_service.v1 import service_pb2 as pb
from tz_client.codec import iter_chunks, layout_of, loss_to_proto

INTS = [0, 1, 2, 7, -1, 2**31 - 1, 2**32 - 1, 2**63 - 1, -2**63]
FLOATS = [0.0, -0.0, 0.5, -1.0, 1e308, float("nan"), float("inf"), -float("inf")]
T = 1.0  # seconds per call: a fuzzed `wait` may ask the server to hold a call for long
STRINGS = ["", "st", "x" * 3000, "../../etc", "a\x00b", "ü∂", "Adam", "tpu",
           "0:0", "1:0", "0:1", "99999999999999999999:1", ":", "a:b", "1:", ":1", "-1:0", "1:-1", " 1:0"]
RANGES = {**dict.fromkeys((FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32), (-2**31, 2**31)),
          **dict.fromkeys((FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64), (-2**63, 2**63)),
          **dict.fromkeys((FD.TYPE_UINT32, FD.TYPE_FIXED32), (0, 2**32)),
          **dict.fromkeys((FD.TYPE_UINT64, FD.TYPE_FIXED64), (0, 2**64))}


def random_value(rng: random.Random, f: FD) -> object:
    if f.type in RANGES:
        lo, hi = RANGES[f.type]
        return rng.choice([v for v in INTS if lo <= v < hi])
    if f.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return rng.choice(FLOATS)
    if f.type == FD.TYPE_BOOL:
        return rng.random() < 0.5
    if f.type == FD.TYPE_STRING:
        return rng.choice(STRINGS)
    if f.type == FD.TYPE_BYTES:
        return rng.randbytes(rng.choice([0, 1, 4, 12, 40]))
    if f.type == FD.TYPE_ENUM:
        return rng.choice([v.number for v in f.enum_type.values] + [99])
    raise TypeError(f"no random values for field type {f.type}")


def mutate(rng: random.Random, msg: object, p: float = 0.3, depth: int = 0) -> object:
    """Replaces about a fraction ``p`` of ``msg``'s fields (recursively) by random values (a session
    name seldom: a call on an unknown session only tests the lookup)."""
    for f in msg.DESCRIPTOR.fields:
        if rng.random() > (p / 6 if f.name in ("session", "name") else p):
            continue
        value = getattr(msg, f.name)
        if f.type != FD.TYPE_MESSAGE:
            if f.is_repeated:
                del value[:]
                value.extend(random_value(rng, f) for _ in range(rng.choice([0, 1, 2, 5])))
            else:
                setattr(msg, f.name, random_value(rng, f))
        elif f.message_type.GetOptions().map_entry or depth >= 3:
            continue
        elif f.is_repeated:
            if rng.random() < 0.3:
                del value[:]
            elif len(value) and rng.random() < 0.3:
                value.append(value[0])
            elif len(value) and rng.random() < 0.7:
                for entry in value:
                    mutate(rng, entry, 0.5, depth + 1)
            else:
                mutate(rng, value.add(), p, depth + 1)
        elif rng.random() < 0.2:
            msg.ClearField(f.name)
        else:
            mutate(rng, value, p, depth + 1)
    return msg


def chunk_messages(rng: random.Random, tensors: list[torch.Tensor], make: Callable[[bytes], object]) -> list:
    """The tensors' chunks, now and then replaced by bytes of the wrong length."""
    return [make(b"".join(ch) if rng.random() > 0.2 else rng.randbytes(rng.choice([0, 4, 7])))
            for ch in iter_chunks(tensors)]


def test_random_bad_messages_get_clear_statuses_and_harm_nothing(deployment, client, name):
    rng = random.Random(1234)
    stub = client.conn.stub
    x0 = [torch.randn(3, 2), torch.randn(4)]
    study = client.create_study(name, x0, [tz.m.SPSA(), tz.m.LR(0.1)], seed=0, lower=-3.0, upper=3.0,
                                ask_timeout=1.0)  # (trials held by fuzzed client ids come back soon)
    ps = [torch.nn.Parameter(t.clone()) for t in x0]
    opt_name = name + "-opt"
    opt = RemoteOptimizer([{"params": [ps[0]], "lr": 0.5}, {"params": [ps[1]]}], tz.m.Adam(), tz.m.LR(0.1),
                          address=deployment.address, session=opt_name)
    groups = [pb.ParamGroup(params=[0], options=specs.to_map({"lr": 0.1})), pb.ParamGroup(params=[1])]
    with tz_client.Client(deployment.address, client_id="fuzz") as fuzzer:
        trials = fuzzer.open_study(name).ask(n=2)  # held by the fuzzer's client id, as its trials will be
    grads = [torch.ones(3, 2), torch.ones(4)]

    def create() -> None:
        header = pb.CreateHeader(name=f"{name}-new{rng.randrange(100)}", kind=rng.choice([pb.STUDY, pb.OPTIMIZER]),
                                 modules=specs.modules_to_proto([tz.to_spec(tz.m.Adam()), tz.to_spec(tz.m.LR(0.1))]),
                                 params=layout_of(x0), groups=groups)
        stub.CreateSession(iter([pb.CreateRequest(header=mutate(rng, header)),
                                 *chunk_messages(rng, x0, lambda b: pb.CreateRequest(chunk=b))]), timeout=T)

    def tell_request() -> pb.TellRequest:
        return mutate(rng, pb.TellRequest(session=name, client_id="fuzz", then_ask=pb.AskRequest(session=name, n=1),
                                          items=[pb.TellItem(id=t.id, loss=loss_to_proto(1.0)) for t in trials]))

    def step(mode: int) -> None:
        start = mutate(rng, pb.StepStart(session=opt_name, step=opt.current_step, mode=mode, grads=layout_of(grads),
                                         groups=groups))
        if mode == pb.PUSH:
            rest = chunk_messages(rng, grads, lambda b: pb.StepRequest(chunk=b))
        else:
            rest = [mutate(rng, pb.StepRequest(result=pb.EvalResult(index=0, loss=loss_to_proto(1.0))))]
        list(stub.Step(iter([pb.StepRequest(start=start), *rest]), timeout=T))

    calls = {
        "create": create,
        "ask": lambda: stub.Ask(mutate(rng, pb.AskRequest(session=name, client_id="fuzz", n=2)), timeout=T),
        "tell": lambda: stub.Tell(tell_request(), timeout=T),
        "asktell": lambda: list(stub.AskTell(iter([tell_request(), tell_request()]), timeout=T)),
        "push": lambda: step(pb.PUSH),
        "closure": lambda: step(pb.CLOSURE),
        "get": lambda: stub.GetSession(mutate(rng, pb.SessionRef(name=name)), timeout=T),
        "pull": lambda: list(stub.Pull(mutate(rng, pb.SessionRef(name=opt_name)), timeout=T)),
        "best": lambda: stub.Best(mutate(rng, pb.SessionRef(name=name)), timeout=T),
    }
    statuses: dict[str, set] = {k: set() for k in calls}
    for i in range(400):
        kind = rng.choice(sorted(calls))
        try:
            calls[kind]()
            statuses[kind].add("OK")
        except grpc.RpcError as e:
            assert e.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (kind, e.details())
            assert e.details(), (kind, e.code())
            statuses[kind].add(e.code().name)
        if i % 100 == 99:  # both sessions still serve their clients (the fuzzer's trials resumed)
            with tz_client.Client(deployment.address, client_id="fuzz") as again:
                resumed = again.open_study(name)
                told = resumed.ask(n=2, wait=10)
                assert told, "no trial for the fuzzer's client id"
                resumed.tell(told, [1.0] * len(told))
                trials = resumed.ask(n=2, wait=10) or trials
            opt.pull()  # (valid fuzzed pushes may have stepped it)
            before = opt.current_step
            for p in ps:
                p.grad = torch.ones_like(p)
            opt.step()
            assert opt.current_step == before + 1 and all(torch.isfinite(p).all() for p in ps)
    assert all(statuses[k] - {"OK"} for k in ("create", "push", "tell")), statuses  # bad input was refused
    assert study.info().state == "running" and opt.delete_session()
    for s in client.list_sessions():
        if s.name.startswith(name) and not s.protected:  # (fuzzed creations may carry a session token)
            client.delete(s.name)


@pytest.mark.parametrize("kind", ["create", "tell", "push"])
def test_mutations_change_the_messages(kind):
    """(The fuzzer above really sends different messages.)"""
    rng = random.Random(kind)
    base = {"create": pb.CreateHeader(name="a", kind=pb.STUDY), "tell": pb.TellRequest(session="a"),
            "push": pb.StepStart(session="a", mode=pb.PUSH)}[kind]
    variants = {mutate(rng, type(base).FromString(base.SerializeToString())).SerializeToString() for _ in range(20)}
    assert len(variants) > 10
