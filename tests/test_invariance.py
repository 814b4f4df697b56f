"""The registry-driven invariance matrix: every registered module, the same checks.

merged vs split parameter groups, closure vs no closure, awkward shapes (0-d, size-1 dims, 5-d),
``reset()`` mid-run, ``state_dict`` round trip mid-run (through ``torch.save`` and
``torch.load(weights_only=True)``), spec round trip (through JSON), pickle and deepcopy round
trips, finite results.
"""
from __future__ import annotations

import copy
import inspect
import io
import json
import pickle

import pytest
import torch

import torchzero as tz
from torchzero.core.spec import MODULES

from module_cases import ABSTRACT, CASES, ModuleCase

SHAPES = [(), (1,), (3, 1), (2, 1, 3, 1, 2), (4, 5)]


def registered_modules() -> list[str]:
    return sorted(n for n, c in MODULES.items() if c.__module__.startswith("torchzero.modules."))


def case_for(name: str) -> ModuleCase:
    if name in CASES:
        return CASES[name]
    cls = MODULES[name]
    return ModuleCase(lambda: [cls(), tz.m.LR(1e-2)])


def make_params() -> list[torch.Tensor]:
    out = []
    for i, s in enumerate(SHAPES):
        n = max(1, int(torch.tensor(s).prod()) if s else 1)
        base = torch.sin(torch.arange(n, dtype=torch.float32) * 0.7 + i).reshape(s)
        out.append(base.clone().requires_grad_(True))
    return out


def loss_fn(params: list[torch.Tensor]) -> torch.Tensor:
    total = torch.zeros(())
    for i, p in enumerate(params):
        t = torch.cos(torch.arange(p.numel(), dtype=torch.float32) + 3 * i).reshape(p.shape)
        total = total + (i + 1) * ((p - t) ** 2).sum()
    s = sum(p.sum() for p in params)
    return total + 0.05 * s ** 2 + 0.01 * sum((p ** 4).sum() for p in params)


class Runner:
    """Builds an optimizer for a case on fresh parameters and steps it."""

    def __init__(self, case: ModuleCase, split: bool = False, params: list[torch.Tensor] | None = None):
        self.case = case
        self.params = params if params is not None else make_params()
        groups = [{"params": [p]} for p in self.params] if split else self.params
        self.opt = tz.Optimizer(groups, *case.build())

    def closure(self, backward: bool = True) -> torch.Tensor:
        loss = loss_fn(self.params)
        if backward:
            self.opt.zero_grad()
            loss.backward()
        return loss

    def step(self, n: int, use_closure: bool = True, seed: int = 0) -> list[torch.Tensor]:
        traj = []
        for i in range(n):
            torch.manual_seed(seed + i)
            if use_closure:
                self.opt.step(self.closure)
            else:
                self.opt.zero_grad()
                loss_fn(self.params).backward()
                self.opt.step()
            traj.append(torch.cat([p.detach().reshape(-1).clone() for p in self.params]))
        return traj


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor], what: str) -> None:
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert torch.equal(x, y), f"{what}: differs at step {i} (max abs diff {float((x - y).abs().max()):.3e})"


NAMES = registered_modules()


def _skip(case: ModuleCase, check: str) -> None:
    if check in case.skip:
        pytest.skip(case.skip[check])


@pytest.fixture(params=NAMES)
def name(request) -> str:
    n = request.param
    if n in ABSTRACT:
        cls = MODULES[n]
        assert inspect.isabstract(cls) or ABSTRACT[n], n
        pytest.skip(f"{n} is a base class: {ABSTRACT[n]}")
    return n


def test_every_module_has_a_working_default_or_case(name: str) -> None:
    case = case_for(name)
    try:
        case.build()
    except TypeError as e:
        pytest.fail(f"{name} needs constructor arguments: add it to tests/module_cases.py ({e})")


def test_finite(name: str) -> None:
    case = case_for(name)
    r = Runner(case)
    traj = r.step(case.steps)
    assert all(torch.isfinite(t).all() for t in traj), f"{name} produced non-finite parameters"
    assert not torch.equal(traj[-1], torch.cat([p.detach().reshape(-1) for p in make_params()])) or "no_progress" in case.skip, \
        f"{name} did not change the parameters"


def test_merged_vs_split(name: str) -> None:
    case = case_for(name)
    _skip(case, "split")
    assert_same(Runner(case).step(case.steps), Runner(case, split=True).step(case.steps), f"{name} merged vs split")


def test_closure_vs_no_closure(name: str) -> None:
    case = case_for(name)
    if case.needs_closure:
        with pytest.raises(RuntimeError, match="closure"):
            Runner(case).step(1, use_closure=False)
        return
    _skip(case, "closure")
    assert_same(Runner(case).step(case.steps), Runner(case).step(case.steps, use_closure=False), f"{name} closure vs none")


def test_plain_closure(name: str) -> None:
    """A closure written without a ``backward`` argument (torch.optim style) gives the same steps."""
    case = case_for(name)
    _skip(case, "closure")
    a = Runner(case)
    ref = a.step(case.steps)
    b = Runner(case)

    def plain():
        b.opt.zero_grad()
        loss = loss_fn(b.params)
        loss.backward()
        return loss
    traj = []
    for i in range(case.steps):
        torch.manual_seed(i)
        b.opt.step(plain)
        traj.append(torch.cat([p.detach().reshape(-1).clone() for p in b.params]))
    assert_same(ref, traj, f"{name} plain closure")


def test_reset_mid_run(name: str) -> None:
    case = case_for(name)
    _skip(case, "reset")
    a = Runner(case)
    a.step(2)
    a.opt.reset()
    a.opt.current_step = 0
    fresh = Runner(case, params=[p.detach().clone().requires_grad_(True) for p in a.params])
    assert_same(a.step(case.steps, seed=100), fresh.step(case.steps, seed=100), f"{name} reset vs fresh")


def test_state_dict_round_trip(name: str) -> None:
    case = case_for(name)
    _skip(case, "state_dict")
    a = Runner(case)
    a.step(2)
    buf = io.BytesIO()
    torch.save(a.opt.state_dict(), buf)
    buf.seek(0)
    sd = torch.load(buf, weights_only=True)
    b = Runner(case, params=[p.detach().clone().requires_grad_(True) for p in a.params])
    b.opt.load_state_dict(sd)
    assert_same(a.step(case.steps, seed=50), b.step(case.steps, seed=50), f"{name} state_dict round trip")


def test_spec_round_trip(name: str) -> None:
    case = case_for(name)
    _skip(case, "spec")
    mods = case.build()
    specs = json.loads(json.dumps([tz.to_spec(m) for m in mods]))
    rebuilt = [tz.from_spec(s) for s in specs]
    assert [type(m) for m in rebuilt] == [type(m) for m in mods]
    assert [tz.to_spec(m) for m in rebuilt] == specs
    a = Runner(case)
    b = Runner(ModuleCase(lambda: [tz.from_spec(s) for s in specs], case.needs_closure, case.steps, case.skip))
    assert_same(a.step(case.steps), b.step(case.steps), f"{name} spec round trip")


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_copy_round_trip(name: str, how: str) -> None:
    case = case_for(name)
    _skip(case, "pickle")
    a = Runner(case)
    a.step(2)
    state = (a.params, a.opt)
    params2, opt2 = pickle.loads(pickle.dumps(state)) if how == "pickle" else copy.deepcopy(state)
    b = Runner.__new__(Runner)
    b.case, b.params, b.opt = case, params2, opt2
    assert_same(a.step(case.steps, seed=7), b.step(case.steps, seed=7), f"{name} {how} round trip")
