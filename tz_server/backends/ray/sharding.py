"""How a session's parameters are split across shards, and which chains may be split.

Plan
----
The unit of sharding is a parameter tensor (a tensor is never cut). Tensors are assigned
largest first to the shard with the fewest elements so far (LPT), which balances shards by size.
Every shard keeps the parameter groups of its tensors: a shard's optimizer has one group per
original group it has tensors of, with that group's options, in the original order.

Stand-ins
---------
Modules choose code paths from what their parameters look like as a whole: a setting that is the
same for every parameter runs as one scalar kernel instead of a per-tensor list, Adam runs its
fused kernel only when every setting, dtype and device agree. Those paths agree only to float
rounding, so a shard holding the tensors of one group only would not compute the bits the
unsharded optimizer computes. Each shard therefore also holds one single-element *stand-in*
parameter (zero, with zero gradients) for every (group, dtype) pair of the session: every shard
then sees the same set of settings and dtypes as the whole session and takes the same paths.
Stand-ins never leave the shard.

Settings between steps
----------------------
The client may change a group's options (an LR scheduler) or freeze parameters
(``requires_grad=False``) between steps. Every shard step carries the shard's view of them
(:func:`shard_settings`): the options of each of its groups, and its frozen positions. A stand-in
is frozen exactly when no tensor of its (group, dtype) pair is trainable anywhere, so the pairs a
shard steps are those the unsharded optimizer steps, however the frozen tensors are spread.
(Plans made before every pair had a stand-in keep working, but are exact under freezing only
while no shard has all the tensors of a pair that is trainable elsewhere frozen.)

Which chains are split
----------------------
Sharding is exact for chains whose modules compute each parameter's update from that parameter
alone (its gradient, its state, its settings) and evaluate the objective at most once, at the
current point, for the gradient. :data:`PER_PARAMETER` lists the modules known to do so (each one
is checked bit for bit against the unsharded optimizer in ``tests/ray/test_sharding.py``).
Anything else - a global norm (``ClipNorm``, ``Normalize``), a line search or trust region
through the closure, zeroth-order estimators, modules that concatenate every parameter
(``LBFGS``, ``BFGS``...), random modules - is refused when the session is created, with an error
naming the module. Use ``shards=1`` for those: an unsharded session runs any chain.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ...errors import InvalidArgument

Layout = Sequence[tuple[tuple[int, ...], torch.dtype]]


def _no_group_override(*keys: str) -> Callable[[Any, list[dict]], str | None]:
    """A check that passes unless a setting that would make the module global is on."""

    def check(module: Any, groups: list[dict]) -> str | None:
        for k in keys:
            if module.defaults.get(k):
                return f"{k}=True needs a quantity over all parameters"
            if any(g.get("options", {}).get(k) for g in groups):
                return f"a parameter group sets {k}, which needs a quantity over all parameters"
        return None
    return check


def _ok(module: Any, groups: list[dict]) -> str | None:
    return None


PER_PARAMETER: dict[str, Callable[[Any, list[dict]], str | None]] = {
    # adaptive methods: per-parameter moments, a step counter shared by every shard
    "Adam": _ok, "Adagrad": _ok, "RMSprop": _ok, "Lion": _ok, "Rprop": _ok,
    # momentum
    "EMA": _ok, "HeavyBall": _ok, "NAG": _ok, "EMASquared": _ok, "SqrtEMASquared": _ok, "Debias": _ok,
    "Cautious": _no_group_override("normalize"),
    # step sizes and weight decay
    "LR": _ok, "StepSize": _ok, "WeightDecay": _ok, "DirectWeightDecay": _ok,
    # element-wise operations
    "Sign": _ok, "Negate": _ok, "Abs": _ok, "Identity": _ok, "Noop": _ok, "Clone": _ok, "ClipValue": _ok,
    "Previous": _ok, "Add": _ok, "Sub": _ok, "Mul": _ok, "Div": _ok,
}
"""Modules whose update is computed parameter by parameter, with an extra check on their settings."""


def check_shardable(modules: Sequence[Any], groups: list[dict]) -> None:
    """Raises :class:`InvalidArgument` naming the first module that cannot be split across shards.

    ``modules`` are every module of the chain, children included (``Optimizer.unrolled_modules``).
    """
    for m in modules:
        name = type(m).__name__
        check = PER_PARAMETER.get(name)
        if check is None:
            raise InvalidArgument(
                f"module {name} cannot be sharded: it is not known to compute each parameter's update from that "
                f"parameter alone (global norms, line searches and other closure evaluations, zeroth-order "
                f"estimators and modules over all parameters at once change meaning when split). Create the "
                f"session with shards=1, or use only: {', '.join(sorted(PER_PARAMETER))}")
        why = check(m, groups)
        if why:
            raise InvalidArgument(f"module {name} cannot be sharded: {why}; create the session with shards=1")


@dataclass
class ShardPlan:
    """One shard: its tensors (global indices, ascending), groups and stand-ins."""

    indices: list[int]
    standins: list[tuple[int, torch.dtype]] = field(default_factory=list)
    """(group index, dtype) of each stand-in, appended after the real tensors."""
    groups: list[dict[str, Any]] = field(default_factory=list)
    """Shard-local groups (``{"params": [local positions], "options": {...}}``); empty: one group."""

    @property
    def size(self) -> int:
        return len(self.indices) + len(self.standins)

    def to_state(self) -> dict[str, Any]:
        return {"indices": list(self.indices), "standins": [[g, str(d).removeprefix("torch.")] for g, d in self.standins],
                "groups": self.groups}

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> "ShardPlan":
        return cls([int(i) for i in d["indices"]], [(int(g), getattr(torch, s)) for g, s in d["standins"]], d["groups"])


def plan_shards(layout: Layout, groups: list[dict[str, Any]], n: int) -> list[ShardPlan]:
    """Splits ``layout`` into at most ``n`` shards (never more than there are tensors)."""
    count = len(layout)
    n = max(1, min(int(n), count))
    numel = [max(1, _numel(shape)) for shape, _ in layout]
    loads = [0] * n
    members: list[list[int]] = [[] for _ in range(n)]
    for i in sorted(range(count), key=lambda i: (-numel[i], i)):
        k = min(range(n), key=lambda k: (loads[k], k))
        members[k].append(i)
        loads[k] += numel[i]
    gid = group_of(groups, count)
    pairs = sorted({(gid[i], layout[i][1]) for i in range(count)}, key=lambda p: (p[0], str(p[1])))
    plans = []
    for idx in members:
        idx = sorted(idx)
        standins = list(pairs) if n > 1 else []
        local_groups: list[dict[str, Any]] = []
        if groups:
            for gi, g in enumerate(groups):
                pos = [j for j, i in enumerate(idx) if gid[i] == gi]
                pos += [len(idx) + j for j, (sg, _) in enumerate(standins) if sg == gi]
                if pos:
                    local_groups.append({"params": pos, "options": dict(g.get("options", {}))})
        plans.append(ShardPlan(idx, standins, local_groups))
    return plans


def group_of(groups: list[dict[str, Any]], count: int) -> list[int]:
    """The group index of each of ``count`` tensors (all 0 without groups)."""
    out = [0] * count
    for gi, g in enumerate(groups):
        for i in g["params"]:
            out[int(i)] = gi
    return out


def shard_settings(plan: ShardPlan, layout: Layout, group_ids: list[int], options: list[dict[str, Any]],
                   frozen: Sequence[int]) -> tuple[list[dict[str, Any]], list[int]]:
    """What shard ``plan`` applies before a step: the options of each of its groups, and the local
    positions of its frozen tensors and stand-ins.

    Args:
        plan: the shard.
        layout: every tensor's (shape, dtype).
        group_ids: every tensor's group index (:func:`group_of`).
        options: every group's explicit options.
        frozen: the frozen tensors (global indices).
    """
    skip = set(frozen)
    trainable = {(group_ids[i], layout[i][1]) for i in range(len(layout)) if i not in skip}
    real = len(plan.indices)
    group_at = [group_ids[i] for i in plan.indices] + [g for g, _ in plan.standins]
    local_options = [dict(options[group_at[g["params"][0]]]) for g in plan.groups] if plan.groups else [dict(options[0])]
    local_frozen = [j for j, i in enumerate(plan.indices) if i in skip]
    local_frozen += [real + j for j, pair in enumerate(plan.standins) if pair not in trainable]
    return local_options, local_frozen


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n
