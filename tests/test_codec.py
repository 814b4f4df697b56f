"""The batch codec (many small tensors of one dtype and shape encoded and decoded at once) and losses."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tz_client._proto.torchzero_service.v1 import service_pb2 as pb
from tz_client.codec import (CodecError, from_proto, loss_from_proto, loss_to_proto, rows_from_protos, rows_to_protos,
                             to_proto, write_loss)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.complex64, torch.int8, torch.bool])
@pytest.mark.parametrize("shape", [(10,), (2, 3), (), (0, 4)])
def test_rows_travel_as_if_sent_one_by_one(dtype, shape):
    x = (torch.randn(5, *shape) * 100).to(dtype)
    msgs = rows_to_protos(x)
    assert [m.SerializeToString() for m in msgs] == [to_proto(r).SerializeToString() for r in x]
    back = rows_from_protos(msgs, [f"m{i}" for i in range(5)])
    assert len(back) == 5
    for b, r in zip(back, x):
        assert b.dtype == dtype and b.shape == r.shape and torch.equal(b, r)
    if x[0].numel():
        back[0].zero_() if dtype != torch.bool else back[0].logical_not_()
        assert torch.equal(back[1], x[1])  # every decoded tensor is the caller's own


def test_rows_of_different_dtypes_or_shapes_are_decoded_one_by_one():
    msgs = [to_proto(torch.ones(3)), to_proto(torch.ones(3, dtype=torch.float64)), to_proto(torch.ones(2))]
    back = rows_from_protos(msgs, ["a", "b", "c"])
    assert [b.dtype for b in back] == [torch.float32, torch.float64, torch.float32]
    assert [b.shape for b in back] == [(3,), (3,), (2,)]


def test_a_bad_message_is_named():
    msgs = [to_proto(torch.ones(3)) for _ in range(4)]
    msgs[2].data = msgs[2].data[:-1]
    with pytest.raises(CodecError, match="^trial 2: 11 bytes"):
        rows_from_protos(msgs, [f"trial {i}" for i in range(4)])
    msgs = [to_proto(torch.ones(3)) for _ in range(2)]
    for m in msgs:
        m.dtype = "float8"
    with pytest.raises(CodecError, match="^trial 0: unknown dtype 'float8'"):
        rows_from_protos(msgs, ["trial 0", "trial 1"])
    assert rows_from_protos([], []) == []
    assert torch.equal(rows_from_protos([to_proto(torch.ones(2))], ["x"])[0], from_proto(to_proto(torch.ones(2))))


@pytest.mark.parametrize("loss", [0.1, -3, np.float32(1.5), np.int64(7), float("inf"), torch.tensor(2.25, dtype=torch.float64),
                                  torch.tensor([0.3], dtype=torch.bfloat16)])
def test_a_loss_written_in_place_is_the_loss_encoded(loss):
    item = pb.TellItem(id="3:1")
    write_loss(item.loss, loss)
    assert item.loss.SerializeToString() == loss_to_proto(loss).SerializeToString()
    back = loss_from_proto(pb.TellItem.FromString(item.SerializeToString()).loss)
    if isinstance(loss, torch.Tensor):  # kept bit for bit, dtype included
        assert isinstance(back, torch.Tensor) and back.dtype == loss.dtype and torch.equal(back.reshape(loss.shape), loss)
    else:
        assert back == float(loss)


@pytest.mark.parametrize("loss, error", [(True, TypeError), ("0.5", TypeError), (None, TypeError),
                                         (torch.ones(2), ValueError)])
def test_bad_losses_are_refused_before_anything_is_sent(loss, error):
    with pytest.raises(error, match="a loss must be"):
        write_loss(pb.TellItem().loss, loss)
    with pytest.raises(error, match="a loss must be"):
        loss_to_proto(loss)
