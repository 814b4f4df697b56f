"""Parameters with ``requires_grad=False`` are skipped by the hosted optimizer as tz.Optimizer skips
them (freezing and unfreezing layers mid-training), bit for bit."""
from __future__ import annotations

import grpc
import pytest
import torch

import torchzero as tz
import tz_server
from tz_client import RemoteOptimizer
from tz_client._proto.torchzero_service.v1 import service_pb2 as pb
from tz_client.codec import iter_chunks, layout_of

from tzsvc_support import assert_same, training_step


def params() -> list[torch.nn.Parameter]:
    torch.manual_seed(1)
    return [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(2)), torch.nn.Parameter(torch.randn(4))]


def train(opt: torch.optim.Optimizer, ps: list[torch.nn.Parameter], closure: bool) -> list:
    """Seven steps: all trainable, then the second parameter frozen, then every parameter (a step
    that changes nothing), then all trainable again; returns the losses."""
    losses = []
    for k in range(7):
        for i, p in enumerate(ps):
            p.requires_grad_(not (k == 4 or (i == 1 and 2 <= k < 4)))
        loss = training_step(opt, lambda: sum((((p - i) ** 2).sum() for i, p in enumerate(ps) if p.requires_grad),
                                                  torch.zeros(())), closure)
        losses.append(None if loss is None else float(loss))
    return losses


@pytest.mark.parametrize("closure", [False, True])
def test_frozen_parameters_match_local_run(deployment, name, closure):
    local_p, remote_p = params(), params()
    local = tz.Optimizer(local_p, tz.m.Adam(), tz.m.LR(0.1))
    remote = RemoteOptimizer(remote_p, tz.m.Adam(), tz.m.LR(0.1), address=deployment.address, session=name)
    assert train(remote, remote_p, closure) == train(local, local_p, closure)
    assert remote.current_step == local.current_step == 7
    assert_same(remote_p, local_p)
    remote.close()


def test_pipelined_session_with_a_frozen_parameter():
    local_p, remote_p = params(), params()
    with tz_server.serve(piece_bytes=8) as srv:
        local = tz.Optimizer(local_p, tz.m.Adam(), tz.m.LR(0.1))
        remote = RemoteOptimizer(remote_p, tz.m.Adam(), tz.m.LR(0.1), address=srv.address, pipelined=True)
        train(local, local_p, False)
        train(remote, remote_p, False)  # frozen steps go whole, the others piece by piece
        assert_same(remote_p, local_p)
        remote.close()


def test_bad_frozen_indices_are_refused(client, name, deployment):
    p = torch.nn.Parameter(torch.zeros(3))
    opt = RemoteOptimizer([p], tz.m.LR(0.1), address=deployment.address, session=name)
    g = torch.ones(3)
    for frozen in ([5], [0, 0]):
        start = pb.StepStart(session=name, step=0, mode=pb.PUSH, grads=layout_of([g]), frozen=frozen)
        with pytest.raises(grpc.RpcError) as e:
            list(client.conn.stub.Step(iter([pb.StepRequest(start=start), *iter_chunks([g])])))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "frozen" in e.value.details()
    p.grad = g.clone()
    opt.step()
    assert torch.equal(p.detach(), torch.full((3,), -0.1))
    opt.close()
