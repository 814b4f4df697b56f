"""Pipelined gradient pushes (tz_server/sessions/pieces.py): element-wise chains step piece by piece
while the gradients arrive. Same bits as the local optimizer; a step that fails part-way leaves
no trace; persistence and closure steps see one consistent optimizer."""
from __future__ import annotations

import grpc
import pytest
import torch

import torchzero as tz
import tz_client
import tz_server
from tz_client import RemoteOptimizer
from tz_client._proto.torchzero_service.v1 import service_pb2 as pb
from tz_client.codec import iter_chunks, layout_of
from tz_client.errors import InvalidArgument
from tz_server.sessions.pieces import ALIGN, ELEMENTWISE, plan_spans, why_not_pipelined

from tzsvc_support import assert_same

PIECE = 1024  # bytes: the parameters below span several pieces


@pytest.fixture(scope="module")
def server():
    srv = tz_server.serve(piece_bytes=PIECE)
    yield srv
    srv.stop()


def shapes() -> list[tuple[int, ...]]:
    return [(300,), (17, 23), (5,), (2, 3, 41)]


def start(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g) for s in shapes()]


def grads(k: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(100 + k)
    return [torch.randn(s, generator=g) for s in shapes()]


def pair(address: str, chain, **kw):
    x0 = start()
    a = [torch.nn.Parameter(t.clone()) for t in x0]
    b = [torch.nn.Parameter(t.clone()) for t in x0]
    return a, tz.Optimizer(a, *chain()), b, RemoteOptimizer(b, *chain(), address=address, pipelined=True, **kw)


def push(params, opt, k: int) -> None:
    for p, g in zip(params, grads(k)):
        p.grad = g.clone()
    opt.step()


def hosted(server, remote):
    return server.backend.get(remote.session)


CHAINS = {
    "Adam": lambda: [tz.m.Adam(), tz.m.LR(1e-2)],
    "Adam-amsgrad": lambda: [tz.m.Adam(beta1=0.8, amsgrad=True), tz.m.LR(1e-2)],
    "Adagrad": lambda: [tz.m.Adagrad(), tz.m.LR(0.1)],
    "RMSprop": lambda: [tz.m.RMSprop(), tz.m.LR(1e-2)],
    "Lion": lambda: [tz.m.Lion(), tz.m.LR(1e-2)],
    "HeavyBall-WeightDecay": lambda: [tz.m.WeightDecay(1e-2), tz.m.HeavyBall(0.9), tz.m.LR(0.1)],
    "NAG-DirectWeightDecay": lambda: [tz.m.NAG(0.9), tz.m.DirectWeightDecay(1e-2), tz.m.LR(0.1)],
    "EMA-Sign-StepSize": lambda: [tz.m.EMA(0.9), tz.m.Sign(), tz.m.StepSize(1e-2)],
}


def test_every_elementwise_module_is_covered():
    used = {type(m).__name__ for make in CHAINS.values() for m in make()}
    assert used == set(ELEMENTWISE)


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_pipelined_push_matches_local_bit_for_bit(server, chain):
    a, local, b, remote = pair(server.address, CHAINS[chain])
    s = hosted(server, remote)
    assert s.stepper is not None and len(s.stepper.pieces) > 3
    for k in range(4):
        push(a, local, k)
        push(b, remote, k)
        assert_same(b, a)
        assert_same(s.params, a)
    assert remote.current_step == s.step == local.current_step == 4
    remote.close()


def test_non_finite_gradient_in_a_late_piece_leaves_no_trace(server):
    a, local, b, remote = pair(server.address, CHAINS["Adam"])
    s = hosted(server, remote)
    push(a, local, 0)
    push(b, remote, 0)
    before = [p.detach().clone() for p in s.params]
    for p, g in zip(b, grads(1)):
        p.grad = g.clone()
    b[-1].grad[-1, -1, -1] = float("nan")  # the last piece: every earlier piece was stepped already
    with pytest.raises(InvalidArgument, match=r"grads\[3\].*non-finite"):
        remote.step()
    assert_same(s.params, before)
    assert_same(b, before)  # the client's copy was brought back in line
    assert s.step == remote.current_step == 1
    for k in (1, 2):  # the rejected step never happened: the next ones match the local run
        push(a, local, k)
        push(b, remote, k)
    assert_same(b, a)
    remote.close()


def test_stream_cut_part_way_leaves_no_trace(server):
    a, local, b, remote = pair(server.address, CHAINS["RMSprop"])
    s = hosted(server, remote)
    push(a, local, 0)
    push(b, remote, 0)
    before = [p.detach().clone() for p in s.params]
    g = grads(1)
    chunks = list(iter_chunks(g, chunk_bytes=PIECE))
    assert len(chunks) > 3

    def requests():
        yield pb.StepRequest(start=pb.StepStart(session=remote.session, step=1, mode=pb.PUSH, grads=layout_of(g)))
        yield from chunks[:3]  # then the client goes away

    stub = remote._conn.stub
    with pytest.raises(grpc.RpcError) as e:
        list(stub.Step(requests()))
    assert e.value.code() == grpc.StatusCode.ABORTED
    assert_same(s.params, before)
    for k in (1, 2):
        push(a, local, k)
        push(b, remote, k)
    assert_same(b, a)
    remote.close()


def test_closure_steps_and_pushes_interleave(server):
    a, local, b, remote = pair(server.address, CHAINS["Adam"])
    target = [torch.ones(s) for s in shapes()]

    def closure_for(params):
        def closure(backward=True):
            loss = sum(((p - t) ** 2).sum() for p, t in zip(params, target))
            if backward:
                for p in params:
                    p.grad = None
                loss.backward()
            return loss
        return closure

    for k in range(4):
        if k % 2:
            local.step(closure_for(a))
            remote.step(closure_for(b))
        else:
            push(a, local, k)
            push(b, remote, k)
        assert_same(b, a)
    remote.close()


def test_pipelined_steps_survive_a_restart(tmp_path):
    x0 = start()
    a = [torch.nn.Parameter(t.clone()) for t in x0]
    local = tz.Optimizer(a, *CHAINS["Adam"]())
    b = [torch.nn.Parameter(t.clone()) for t in x0]
    with tz_server.serve(piece_bytes=PIECE, state_dir=str(tmp_path)) as srv:
        remote = RemoteOptimizer(b, *CHAINS["Adam"](), address=srv.address, session="kept", pipelined=True)
        assert hosted(srv, remote).stepper is not None
        for k in range(3):
            push(a, local, k)
            push(b, remote, k)
        remote.close()
    with tz_server.serve(piece_bytes=PIECE, state_dir=str(tmp_path)) as srv:
        c = [torch.nn.Parameter(torch.zeros_like(t)) for t in x0]
        remote = RemoteOptimizer(c, *CHAINS["Adam"](), address=srv.address, session="kept", pipelined=True)
        assert hosted(srv, remote).stepper is not None  # restored with its config
        assert remote.current_step == 3
        assert_same(c, a)
        for k in range(3, 5):
            push(a, local, k)
            push(c, remote, k)
        assert_same(c, a)
        remote.close()


def test_sessions_that_are_not_pipelined():
    ps = [torch.zeros(10, requires_grad=True), torch.zeros(10, requires_grad=True)]
    assert "not element-wise" in why_not_pipelined(tz.Optimizer(ps, tz.m.ClipNorm(1.0), tz.m.LR(0.1)), ps)
    assert why_not_pipelined(tz.Optimizer(ps, tz.m.Adam(), tz.m.LR(0.1)), ps) is None
    groups = [{"params": ps[:1], "lr": 0.1}, {"params": ps[1:]}]
    assert "different settings" in why_not_pipelined(tz.Optimizer(groups, tz.m.Adam(), tz.m.LR(0.1)), ps)
    mixed = [ps[0], torch.zeros(10, dtype=torch.float64, requires_grad=True)]
    assert "dtypes" in why_not_pipelined(tz.Optimizer(mixed, tz.m.Adam(), tz.m.LR(0.1)), mixed)


def test_pipelining_is_asked_for_and_refused_with_a_reason(server):
    x0 = start()
    b = [torch.nn.Parameter(t.clone()) for t in x0]
    plain = RemoteOptimizer(b, tz.m.Adam(), tz.m.LR(1e-2), address=server.address)
    assert hosted(server, plain).stepper is None  # not asked for: receive everything, then step
    plain.close()
    with pytest.raises(InvalidArgument, match="pipelined=True: ClipNorm is not element-wise"):
        RemoteOptimizer(b, tz.m.ClipNorm(1.0), tz.m.LR(1e-2), address=server.address, pipelined=True)
    with pytest.raises(InvalidArgument, match="pipelined=True: parameter groups with different settings"):
        RemoteOptimizer([{"params": b[:2], "lr": 0.5}, {"params": b[2:]}], tz.m.Adam(), tz.m.LR(1e-2),
                        address=server.address, pipelined=True)
    with pytest.raises(InvalidArgument, match="workers=1"):
        RemoteOptimizer(b, tz.m.Adam(), address=server.address, pipelined=True, workers=2)


def test_a_server_with_piece_bytes_0_steps_pipelined_sessions_whole():
    with tz_server.serve(piece_bytes=0) as srv:
        a, local, b, remote = pair(srv.address, CHAINS["Adam"])
        assert hosted(srv, remote).stepper is None
        for k in range(2):
            push(a, local, k)
            push(b, remote, k)
        assert_same(b, a)
        remote.close()


@pytest.mark.parametrize("piece", [7, 256, 1000, 4096])
def test_plan_covers_every_element_once_with_aligned_cuts(piece):
    params = [torch.zeros(s) for s in [(1000,), (3,), (130, 7), (1,), (64,)]]
    pieces = plan_spans(params, piece)
    seen = {i: 0 for i in range(len(params))}
    last_end = 0
    for spans in pieces:
        assert spans and spans[-1][3] > last_end
        last_end = spans[-1][3]
        for i, a, b, end in spans:
            assert a == seen[i] and b > a  # in order, no gap, no overlap
            assert a % ALIGN == 0 and (b % ALIGN == 0 or b == params[i].numel())
            seen[i] = b
    assert all(seen[i] == p.numel() for i, p in enumerate(params))
    assert last_end == sum(p.numel() * 4 for p in params)


def test_every_deployment_accepts_or_refuses_pipelining_clearly(deployment):
    b = [torch.nn.Parameter(t.clone()) for t in start()]
    if deployment.kind == "ray":
        with pytest.raises(InvalidArgument, match="pipelined sessions need the local backend"):
            RemoteOptimizer(b, tz.m.Adam(), tz.m.LR(1e-2), address=deployment.address, pipelined=True)
        return
    a = [torch.nn.Parameter(t.clone()) for t in start()]
    local = tz.Optimizer(a, tz.m.Adam(), tz.m.LR(1e-2))
    remote = RemoteOptimizer(b, tz.m.Adam(), tz.m.LR(1e-2), address=deployment.address, pipelined=True)
    client = tz_client.Client(deployment.address)
    assert {i.name: i.pipelined for i in client.list_sessions()}[remote.session] is True
    client.close()
    for k in range(2):
        push(a, local, k)
        push(b, remote, k)
    assert_same(b, a)
    remote.delete_session()
    remote.close()
