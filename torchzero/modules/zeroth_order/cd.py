"""Coordinate descent from function values."""
from __future__ import annotations

from typing import Literal

import torch

from ...core.evaluation import Perturbation, Point, evaluate_points
from ...core.module import Module
from ...core.objective import Objective

_INDEX = ("cyclic", "cyclic2", "random")


def _coordinate(strategy: str, k: int, n: int) -> int:
    if strategy == "cyclic":
        return k % n
    if strategy == "cyclic2":
        j = k % (2 * n)
        return j if j < n else 2 * n - 1 - j
    return int(torch.randint(0, n, ()).item())


class CD(Module):
    """Coordinate descent: a step along one coordinate per iteration, from function values only.

    At step ``k`` a coordinate ``i`` is chosen (``index``) and, with ``h_i`` its finite-difference
    step, ``f_+ = f(x + h_i e_i)``, ``f_- = f(x - h_i e_i)`` (and ``f_0 = f(x)``) are evaluated in
    one batch. The update (subtracted from ``x``) is ``s e_i`` with

    * ``threepoint=True``: ``s = (f_+ - f_-) / (2 h_i)`` if ``grad`` else ``sign(f_+ - f_-)``;
      when ``f_0 <= min(f_+, f_-)`` the minimum along ``e_i`` lies within ``h_i`` of ``x``: the
      update is zero and, with ``adaptive``, ``h_i`` is halved (it is doubled back, up to ``h``,
      after each step that is not bracketed);
    * ``threepoint=False``: ``s = (f_+ - f_0) / h_i`` if ``grad`` else ``sign(f_+ - f_0)``
      (two points; ``adaptive`` does not apply).

    Follow it with a fixed step size (``tz.m.LR``) or a line search.

    Reference: Wright, S. J. (2015), "Coordinate descent algorithms", Mathematical Programming
    151, 3-34, doi:10.1007/s10107-015-0892-3.

    Args:
        h: finite-difference step (a per-parameter setting).
        grad: scale the direction by the finite-difference derivative; otherwise its length is 1.
        adaptive: adapt ``h_i`` per coordinate (three-point only).
        index: ``"cyclic"`` (0, 1, ..., n-1, 0, 1, ...), ``"cyclic2"`` (0, ..., n-1, n-1, ..., 0,
            0, ...) or ``"random"`` (uniform, from the global torch RNG).
        threepoint: evaluate both sides (three points) rather than one side (two points).
    """

    def __init__(self, h: float = 1e-3, grad: bool = False, adaptive: bool = True,
                 index: Literal["cyclic", "cyclic2", "random"] = "cyclic2", threepoint: bool = True):
        if index not in _INDEX:
            raise ValueError(f"index must be one of {_INDEX}, got {index!r}")
        if h <= 0:
            raise ValueError(f"h must be positive, got {h}")
        super().__init__(dict(h=h, grad=grad, adaptive=adaptive, index=index, threepoint=threepoint))

    def apply(self, objective: Objective) -> Objective:
        closure = objective.closure
        if closure is None:
            raise RuntimeError("CD evaluates the objective and needs a closure; pass one to optimizer.step(closure)")
        params = objective.params
        setting = self.settings[params[0]]
        grad, adaptive, index, threepoint = setting["grad"], setting["adaptive"], setting["index"], setting["threepoint"]
        sizes = [p.numel() for p in params]
        n = sum(sizes)
        k = self.increment_counter("step", 0)
        i = _coordinate(index, k, n)
        # the parameter holding coordinate i
        j, local = 0, i
        while local >= sizes[j]:
            local -= sizes[j]
            j += 1
        p = params[j]
        h0 = float(self.settings[p]["h"])
        if adaptive and threepoint:
            hvec = self.state[p].get("h_vec")
            if hvec is None:
                hvec = self.state[p]["h_vec"] = torch.full_like(p, h0, memory_format=torch.contiguous_format)
            h = float(hvec.view(-1)[local])
        else:
            hvec, h = None, h0

        base = [q.detach().clone() for q in params]
        need_f0 = objective.loss is None
        points: list[Point] = [base] if need_f0 else []
        points.append(Perturbation(base, i, h, "basis"))
        if threepoint:
            points.append(Perturbation(base, i, -h, "basis"))
        results = evaluate_points(closure, params, points)
        values = [float(r.loss) for r in results]
        if need_f0:
            f0 = values.pop(0)
            loss = results[0].loss
            objective.loss = objective.loss_approx = loss.detach() if isinstance(loss, torch.Tensor) else loss
        else:
            f0 = float(objective.loss)
        fp = values[0]
        if threepoint:
            fm = values[1]
            if f0 <= min(fp, fm):
                s = 0.0
                if hvec is not None:
                    hvec.view(-1)[local] = h / 2
            else:
                s = (fp - fm) / (2 * h) if grad else float((fp > fm) - (fp < fm))
                if hvec is not None and h < h0:
                    hvec.view(-1)[local] = min(2 * h, h0)
        else:
            s = (fp - f0) / h if grad else float((fp > f0) - (fp < f0))

        updates = [torch.zeros(q.shape, dtype=q.dtype, device=q.device) for q in params]
        updates[j].view(-1)[local] = s
        objective.set_updates(updates, owned=True)
        return objective
