"""Pipelined gradient pushes: an element-wise chain steps each piece of the parameters as soon
as its gradients have arrived, and the new values go back while later gradients still arrive.

Why it is exact
---------------
An element-wise chain (``Adam -> LR``, ``HeavyBall -> LR``...) computes every entry of the update
from the same entry of the gradient and of its state, with settings and a step counter shared by
every entry. Stepping the parameters piece by piece, each piece with its own copy of the chain
whose per-parameter state *is a view* of the whole optimizer's state, therefore computes the bits
one step of the whole optimizer computes — provided every piece takes the same code path as the
whole (the same settings and dtype everywhere: fused Adam runs only when those agree), which is
why only sessions with uniform group settings, one dtype and one device are pipelined. Piece
boundaries inside a tensor fall on multiples of 64 elements, so vectorised kernels see the same
element alignment as on the whole tensor. ``tests/service/test_pipelined_push.py`` checks every
module of :data:`ELEMENTWISE` bit for bit against the unpipelined step.

The session's own optimizer stays the source of truth (checkpoints, closure steps, restores use
it); the piece optimizers alias its state tensors and copy its small global state (step counters)
back after every step. They are rebuilt whenever the whole optimizer was stepped or reloaded.

Nothing half-done survives: before a piece is stepped its parameters and state are copied into
an undo buffer (allocated once, reused), and a step that fails part-way (non-finite gradients in a
later piece, a dropped stream, a closed session) restores every piece it stepped.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

import torchzero as tz

ELEMENTWISE = frozenset({
    "Adam", "Adagrad", "RMSprop", "Lion", "HeavyBall", "NAG", "EMA", "Sign", "LR", "StepSize",
    "WeightDecay", "DirectWeightDecay",
})
"""Modules whose update of each entry depends only on that entry (and shared scalars)."""

ALIGN = 64
"""Piece boundaries inside a tensor fall on multiples of this many elements."""


def why_not_pipelined(opt: tz.Optimizer, params: Sequence[torch.Tensor]) -> str | None:
    """None if ``opt`` can be stepped piece by piece; otherwise the reason it cannot."""
    for m in opt.unrolled_modules:
        name = type(m).__name__
        if name not in ELEMENTWISE:
            return f"{name} is not element-wise"
        if m.children:
            return f"{name} has child modules"
        if m.settings.overrides:
            return f"{name} has per-parameter setting overrides"
    if len({p.dtype for p in params}) != 1 or len({p.device for p in params}) != 1:
        return "parameters of several dtypes or devices"
    if any(p.device.type != "cpu" for p in params):
        return "parameters are not on the CPU"
    options = [g.options() for g in opt.param_groups]
    if any(o != options[0] for o in options[1:]):
        return "parameter groups with different settings"
    return None


@dataclass
class _Span:
    """Elements ``[a, b)`` of parameter ``index`` (flattened), stepped as one piece parameter."""
    index: int
    a: int
    b: int
    view: torch.Tensor  # the parameter's entries a:b (a flat view)


@dataclass
class _Piece:
    spans: list[_Span]
    end: int                      # payload bytes that must have arrived before the piece steps
    opt: tz.Optimizer | None = None
    undo: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (live view, backup)
    copied: list[tuple[dict, str]] = field(default_factory=list)  # per-parameter plain values


def plan_spans(params: Sequence[torch.Tensor], piece_bytes: int) -> list[list[tuple[int, int, int, int]]]:
    """Cuts the payload (every parameter's bytes, in order) into pieces of about ``piece_bytes``:
    a list of pieces, each a list of ``(param index, a, b, end byte)`` spans."""
    pieces: list[list[tuple[int, int, int, int]]] = [[]]
    filled = 0
    offset = 0
    for i, p in enumerate(params):
        n, size = p.numel(), p.element_size()
        a = 0
        while a < n:
            room = max(piece_bytes - filled, size) // size
            b = n if n - a <= room else min(n, max(a + ALIGN, (a + room) // ALIGN * ALIGN))
            pieces[-1].append((i, a, b, offset + b * size))
            filled += (b - a) * size
            a = b
            if filled >= piece_bytes:
                pieces.append([])
                filled = 0
        offset += n * size
    return [pc for pc in pieces if pc]


class PieceStepper:
    """Steps ``opt`` (an element-wise chain) piece by piece; see the module docstring."""

    def __init__(self, opt: tz.Optimizer, params: Sequence[torch.Tensor], modules: Sequence[Any], piece_bytes: int):
        self.opt = opt
        self.params = list(params)
        self.modules = list(modules)  # specs, to build the pieces' chains
        self.pieces: list[_Piece] = []
        for spans in plan_spans(self.params, piece_bytes):
            sp = [_Span(i, a, b, self.params[i].detach().view(-1)[a:b].requires_grad_(True)) for i, a, b, _ in spans]
            self.pieces.append(_Piece(sp, spans[-1][3]))
        self.built = False

    @property
    def worthwhile(self) -> bool:
        return len(self.pieces) > 1

    def invalidate(self) -> None:
        """The whole optimizer was stepped or reloaded: alias its state again before the next step."""
        self.built = False

    # -- aliasing -------------------------------------------------------------------------------------
    def build(self) -> None:
        """Builds the pieces' optimizers over views of the whole one's state (state the whole one
        does not have yet, before its first step, is created by the pieces and copied back)."""
        whole = self.opt.unrolled_modules
        groups = self.opt.param_groups
        options = groups[0].options()
        for pc in self.pieces:
            chain = [tz.from_spec(s) for s in self.modules]
            pc.opt = tz.Optimizer([{"params": [s.view for s in pc.spans], **options}], *chain)
            pc.undo, pc.copied = [], []
            for wm, pm in zip(whole, pc.opt.unrolled_modules):
                pm.global_state = copy.deepcopy(wm.global_state)
                if not wm.state:
                    continue
                for s in pc.spans:
                    p = self.params[s.index]
                    mine = pm.state[s.view]
                    for key, v in wm.state.get(p, {}).items():
                        if isinstance(v, torch.Tensor) and v.shape == p.shape and v.is_contiguous():
                            view = v.view(-1)[s.a:s.b]
                            mine[key] = view
                            pc.undo.append((view, torch.empty_like(view)))
                        else:
                            mine[key] = copy.deepcopy(v)
                            pc.copied.append((mine, key))
            pc.undo.extend((s.view, torch.empty_like(s.view)) for s in pc.spans)
        self.built = True

    # -- stepping -------------------------------------------------------------------------------------
    def run(self, grads: Sequence[torch.Tensor], arrived: Iterator[int], check: Callable[[list[torch.Tensor], list[int]], None],
            emit: Callable[[int], None]) -> None:
        """One step. ``arrived`` yields how many payload bytes of ``grads`` have been received so
        far (it blocks for more and raises if the stream fails); each piece is checked with
        ``check(grad views, param indices)`` and stepped once its bytes are in, then
        ``emit(end byte)`` is called — except for the last piece: the caller announces the end once
        the step is committed (and saved), so a client never holds a step the server could lose.
        On any error every stepped piece is restored."""
        assert self.built
        flat = [g.view(-1) for g in grads]
        step, evals = self.opt.current_step, self.opt.num_evaluations
        saved: list[tuple[_Piece, dict[int, dict], list[Any]]] = []
        k = 0
        try:
            for received in arrived:
                while k < len(self.pieces) and self.pieces[k].end <= received:
                    pc = self.pieces[k]
                    check([flat[s.index][s.a:s.b] for s in pc.spans], [s.index for s in pc.spans])
                    assert pc.opt is not None
                    saved.append((pc, {id(m): copy.deepcopy(m.global_state) for m in pc.opt.unrolled_modules},
                                  [copy.deepcopy(d[key]) for d, key in pc.copied]))
                    for live, backup in pc.undo:
                        backup.copy_(live)
                    for s in pc.spans:
                        s.view.grad = flat[s.index][s.a:s.b]
                    pc.opt.current_step, pc.opt.num_evaluations = step, evals
                    try:
                        pc.opt.step()
                    finally:
                        for s in pc.spans:
                            s.view.grad = None
                    k += 1
                    if k < len(self.pieces):
                        emit(pc.end)
            if k != len(self.pieces):
                raise RuntimeError("the gradients ended before every piece arrived")
        except BaseException:
            self._undo(saved)
            raise
        self._commit()

    def _undo(self, saved: list[tuple[_Piece, dict[int, dict], list[Any]]]) -> None:
        self.built = False  # state a piece created (first step) is not shared: rebuild from the whole
        with torch.no_grad():
            for pc, globals_, values in saved:
                for live, backup in pc.undo:
                    live.copy_(backup)
                assert pc.opt is not None
                for m in pc.opt.unrolled_modules:
                    m.global_state = globals_[id(m)]
                for (d, key), v in zip(pc.copied, values):
                    d[key] = v

    def _commit(self) -> None:
        """Copies what the pieces do not share with the whole optimizer back into it."""
        first = self.pieces[0].opt
        assert first is not None
        for wm, pm in zip(self.opt.unrolled_modules, first.unrolled_modules):
            wm.global_state = copy.deepcopy(pm.global_state)
        for pc in self.pieces:
            assert pc.opt is not None
            for wm, pm in zip(self.opt.unrolled_modules, pc.opt.unrolled_modules):
                for s in pc.spans:
                    st = pm.state.get(s.view)
                    if not st:
                        continue
                    whole = wm.state[self.params[s.index]]
                    for key, v in st.items():
                        if key not in whole:  # a module created state the whole optimizer lacks
                            self.built = False
                            whole[key] = _grow(v, self.params[s.index], s) if isinstance(v, torch.Tensor) else v
                        elif not isinstance(v, torch.Tensor) or v.data_ptr() != whole[key].view(-1)[s.a:s.b].data_ptr():
                            if isinstance(v, torch.Tensor) and v.shape == s.view.shape:
                                whole[key].view(-1)[s.a:s.b].copy_(v)
                            else:
                                whole[key] = copy.deepcopy(v)
        self.opt.current_step += 1
        self.opt.num_evaluations += 1


def _grow(v: torch.Tensor, p: torch.Tensor, s: _Span) -> torch.Tensor:
    if v.shape != s.view.shape:
        return v.clone()
    out = torch.zeros_like(p)
    out.view(-1)[s.a:s.b].copy_(v)
    return out
