"""Stochastic variance reduced gradient."""
from __future__ import annotations

from typing import Any

import torch

from ...core.evaluation import evaluate_points
from ...core.module import Module
from ...core.objective import Objective


class SVRG(Module):
    """Stochastic variance reduced gradient (Johnson & Zhang, 2013).

    A cycle has two phases. First the full gradient ``g_f(x_0)`` at the anchor ``x_0`` is
    computed: either from a ``full_closure`` passed to ``step`` (``opt.step(closure,
    full_closure=fc)``; it sets the full gradient in ``.grad`` and returns the full loss), or by
    averaging the mini-batch gradients of ``accum_steps`` steps during which the parameters do
    not move. Then ``svrg_steps`` steps use, on each mini-batch ``b``::

        g = g_b(x) - alpha (g_b(x_0) - g_f(x_0))
        f = f_b(x) - alpha (f_b(x_0) - f_f(x_0))        (reported loss, with svrg_loss)

    where ``g_b(x)`` and ``g_b(x_0)`` come from one batch of two evaluations of the closure.
    ``alpha`` can be annealed from 1 to 0 (Yin et al., 2023, arXiv:2311.05589).
    Put SVRG first (after a gradient estimator to reduce that estimator's variance).

    Reference: Johnson, R., & Zhang, T. (2013), "Accelerating stochastic gradient descent using
    predictive variance reduction", NeurIPS 26.

    Args:
        svrg_steps: SVRG steps per cycle (e.g. the number of batches in an epoch).
        accum_steps: mini-batch steps averaged into the full gradient (None: ``svrg_steps``);
            not used with ``full_closure``.
        reset_before_accum: reset the modules after SVRG when a new full gradient is computed.
        svrg_loss: report the variance-reduced loss.
        alpha: weight of the correction ``g_b(x_0) - g_f(x_0)``.
    """

    def __init__(self, svrg_steps: int, accum_steps: int | None = None, reset_before_accum: bool = True,
                 svrg_loss: bool = True, alpha: float = 1):
        if int(svrg_steps) < 1:
            raise ValueError(f"svrg_steps must be >= 1, got {svrg_steps}")
        if accum_steps is not None and int(accum_steps) < 1:
            raise ValueError(f"accum_steps must be >= 1 or None, got {accum_steps}")
        super().__init__(dict(svrg_steps=svrg_steps, accum_steps=accum_steps, reset_before_accum=reset_before_accum,
                              svrg_loss=svrg_loss, alpha=alpha))

    @staticmethod
    def _loss_grads(objective: Objective) -> tuple[Any, list[torch.Tensor]]:
        """Loss and gradient at the current point (a gradient estimator before SVRG may only
        know a nearby loss)."""
        grads = objective.get_grads()
        loss = objective.loss if objective.loss is not None else objective.loss_approx
        if loss is None:
            loss = objective.get_loss(False)
        return loss, grads

    def _reset_others(self, objective: Objective) -> None:
        # the modules that consume the variance-reduced gradient (those after SVRG); a gradient
        # estimator before SVRG keeps its state (e.g. its random stream)
        if objective.modular is not None:
            mods = objective.modular.modules
            after = mods[mods.index(self) + 1:] if self in mods else [m for m in mods if m is not self]
            for m in after:
                m.reset()

    def apply(self, objective: Objective) -> Objective:
        params = objective.params
        s = self.settings[params[0]]
        closure = objective.closure
        if closure is None:
            raise RuntimeError("SVRG evaluates mini-batch gradients at two points and needs a closure; "
                               "pass one to optimizer.step(closure)")
        svrg_steps = int(s["svrg_steps"])
        accum_steps = int(s["accum_steps"]) if s["accum_steps"] is not None else svrg_steps
        gs = self.global_state
        phase = gs.get("phase", "full")

        if phase == "full":
            full_closure = objective.storage.get("full_closure")
            if gs.get("accumulated", 0) == 0 and s["reset_before_accum"]:
                self._reset_others(objective)
            anchor = self.get_state(params, "x0")
            g_full = self.get_state(params, "g_full")
            if gs.get("accumulated", 0) == 0:
                for a, p in zip(anchor, params):
                    a.copy_(p.detach())
                for g in g_full:
                    g.zero_()
                gs["f_full"] = 0.0
            if full_closure is not None:
                with torch.enable_grad():
                    f = full_closure()
                for g, p in zip(g_full, params):
                    g.copy_(p.grad if p.grad is not None else torch.zeros_like(p))
                gs["f_full"] = float(f.detach() if isinstance(f, torch.Tensor) else f)
                objective.loss = objective.grads = None
                loss, grads = self._loss_grads(objective)  # the mini-batch at x0
                done = True
            else:
                loss, grads = self._loss_grads(objective)
                torch._foreach_add_(g_full, grads)
                gs["f_full"] += float(loss.detach() if isinstance(loss, torch.Tensor) else loss)
                k = gs.get("accumulated", 0) + 1
                gs["accumulated"] = k
                done = k >= accum_steps
                if done:
                    torch._foreach_div_(g_full, k)
                    gs["f_full"] /= k
            if not done:
                # the parameters stay at the anchor while the full gradient is accumulated
                objective.loss = objective.loss_approx = loss
                objective.stop = True
                objective.skip_update = True
                return objective
            gs["accumulated"] = 0
            gs["phase"] = "svrg"
            gs["svrg_done"] = 0
            # first SVRG step: x = x0, so g_b(x) = g_b(x0) is the mini-batch just evaluated
            return self._finish(objective, s, loss, grads, loss, grads, g_full, svrg_steps)

        anchor = self.get_state(params, "x0", must_exist=True)
        g_full = self.get_state(params, "g_full", must_exist=True)
        x = [p.detach().clone() for p in params]
        r_x, r_0 = evaluate_points(closure, params, [x, [a.clone() for a in anchor]], backward=True)
        assert r_x.grads is not None and r_0.grads is not None
        return self._finish(objective, s, r_x.loss, r_x.grads, r_0.loss, r_0.grads, g_full, svrg_steps)

    def _finish(self, objective: Objective, s: Any, loss_x: Any, grads_x: Any, loss_0: Any, grads_0: Any,
                g_full: list[torch.Tensor], svrg_steps: int) -> Objective:
        gs = self.global_state
        alpha = float(s["alpha"])
        # g = g_b(x) - alpha (g_b(x0) - g_f(x0))
        corr = torch._foreach_sub(list(grads_0), g_full)
        g = torch._foreach_add(list(grads_x), corr, alpha=-alpha)
        loss: Any = loss_x.detach() if isinstance(loss_x, torch.Tensor) else loss_x
        if s["svrg_loss"]:
            fb, f0 = float(loss), float(loss_0.detach() if isinstance(loss_0, torch.Tensor) else loss_0)
            loss = torch.as_tensor(fb - alpha * (f0 - gs["f_full"]), dtype=objective.params[0].dtype)
        objective.loss = objective.loss_approx = loss
        objective.grads = g
        objective.set_updates(g, owned=False)
        n = gs.get("svrg_done", 0) + 1
        gs["svrg_done"] = n
        if n >= svrg_steps:
            gs["phase"] = "full"
        return objective
