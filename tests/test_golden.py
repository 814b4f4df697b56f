"""Replays the golden trajectories recorded from the reference implementation (scripts/golden.py)."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

import torchzero as tz

GOLDEN = Path(__file__).parent / "golden"
sys.path.insert(0, str(GOLDEN))
from golden_case import GoldenCase  # noqa: E402
from problems import run  # noqa: E402


def _cases() -> list:
    import importlib.util
    out = []
    for f in sorted((GOLDEN / "cases").glob("*.py")):
        data_file = GOLDEN / "data" / f"{f.stem}.json"
        if not data_file.exists():
            continue
        spec = importlib.util.spec_from_file_location(f"golden_cases_{f.stem}", f)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        data = json.loads(data_file.read_text())
        for c in mod.CASES:
            out.append(pytest.param(c, data.get(c.name), id=f"{f.stem}:{c.name}"))
    return out


@pytest.mark.parametrize("case, expected", _cases())
def test_golden(case: GoldenCase, expected: dict | None) -> None:
    assert expected is not None, f"no recorded data for {case.name}: run scripts/golden.py record"
    if "error" in expected:
        pytest.skip(f"the reference cannot run this case ({expected['error']}); covered by other tests")
    build = lambda params: tz.Optimizer(params, *eval(f"[{case.build}]", {"tz": tz, "torch": torch}))
    got = run(build, case.problem, case.steps, case.closure)
    exp_traj = torch.tensor(expected["trajectory"], dtype=torch.float64)
    got_traj = torch.tensor(got["trajectory"], dtype=torch.float64)
    assert got_traj.shape == exp_traj.shape
    for step, (g, e) in enumerate(zip(got_traj, exp_traj)):
        if not torch.allclose(g, e, rtol=case.rtol, atol=case.atol, equal_nan=True):
            diff = float((g - e).abs().max())
            pytest.fail(f"{case.name}: trajectory diverges from the reference at step {step} (max abs diff {diff:.3e})")
    for g, e in zip(got["losses"], expected["losses"]) if case.compare_losses else ():
        if not (math.isnan(e) or math.isnan(g)):
            assert math.isclose(g, e, rel_tol=max(case.rtol, 1e-7), abs_tol=max(case.atol, 1e-9))
