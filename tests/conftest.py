"""Suite-wide guards."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _default_dtype_is_restored():
    """A test that changes torch's default dtype must restore it (it would silently change the
    tensors of every later test in the same worker)."""
    before = torch.get_default_dtype()
    yield
    after = torch.get_default_dtype()
    torch.set_default_dtype(before)
    assert after == before, f"the test left torch's default dtype at {after} (was {before})"
