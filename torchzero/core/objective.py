"""The :class:`Objective`: what flows through a chain of modules during one step.

It holds the parameters, the closure, and lazily computed loss, gradients and update. The update
is a transformed gradient and is *subtracted* from the parameters at the end of the step.
Evaluations go through the closure (counted by the optimizer) or, for several independent
points at once, through :meth:`Objective.evaluate_batch`.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch

from .evaluation import EvalResult, Point, materialize

if TYPE_CHECKING:
    from .module import Module
    from .optimizer import Optimizer

HVPMethod = Literal["batched_autograd", "autograd", "fd_forward", "fd_central"]


# what a clone takes over as is (hooks, attrs and storage are shared, modified in place)
_SHARED_WITH_CLONES = ("grads", "loss", "loss_approx", "post_step_hooks", "stop", "skip_update", "attrs",
                       "should_terminate", "temp")


class Objective:
    """Parameters, closure, loss, gradients and update of one optimization step.

    Attributes:
        params: parameters with ``requires_grad=True``.
        closure: ``closure(backward=True)``, or None when gradients were computed beforehand.
        updates: the current update (subtracted from ``params`` at the end), None until needed.
        grads: gradients at ``params``, None until computed.
        loss: loss at ``params``, None until computed.
        loss_approx: loss at a nearby point, for modules that only evaluate perturbed points.
        stop: skip the remaining modules of the current chain.
        skip_update: do not subtract ``updates`` from the parameters.
        attrs: values copied to ``Optimizer.attrs`` after the step.
        storage: extra keyword arguments given to ``Optimizer.step``.
        should_terminate: set by termination modules.
        is_last: this module is the last (or last before an ``LR``) at the top level.
        last_module_lrs: the per-parameter learning rates of that final ``LR``, if any.
        temp: scratch value handed from a module to the next one.
    """

    def __init__(self, params: Sequence[torch.Tensor], closure: Callable | None = None, loss: torch.Tensor | None = None,
                 model: torch.nn.Module | None = None, current_step: int = 0, parent: "Objective | None" = None,
                 modular: "Optimizer | None" = None, storage: dict | None = None):
        # kept as the same list object when it is one: per-step caches key on its identity
        self.params: list[torch.Tensor] = params if isinstance(params, list) else list(params)
        self.closure = closure
        self.model = model
        self.current_step = current_step
        self.parent = parent
        self.modular = modular
        self.updates: list[torch.Tensor] | None = None
        self.grads: list[torch.Tensor] | None = None
        self.loss: Any = loss
        self.loss_approx: Any = loss
        self.post_step_hooks: list[Callable[["Objective", tuple["Module", ...]], None]] = []
        self.stop = False
        self.skip_update = False
        self.attrs: dict[str, Any] = {}
        self.storage: dict[str, Any] = storage if storage is not None else {}
        self.should_terminate: bool | None = None
        self.is_last = False
        self.nested_is_last = False
        self.last_module_lrs: list[float] | None = None
        self.temp: Any = None
        # whether ``updates`` may be modified in place (False while it aliases ``grads``)
        self._updates_owned = True

    # -- old names (Var) -------------------------------------------------------
    @property
    def update(self) -> list[torch.Tensor] | None:
        return self.updates

    @update.setter
    def update(self, v: list[torch.Tensor] | None) -> None:
        self.set_updates(v)

    @property
    def grad(self) -> list[torch.Tensor] | None:
        return self.grads

    @grad.setter
    def grad(self, v: list[torch.Tensor] | None) -> None:
        self.grads = v

    def get_update(self) -> list[torch.Tensor]:
        return self.get_updates()

    def get_grad(self, retain_graph: bool | None = None, create_graph: bool = False) -> list[torch.Tensor]:
        return self.get_grads(retain_graph, create_graph)

    # -- evaluation ------------------------------------------------------------
    def _call_closure(self, backward: bool, retain_graph: bool | None = None, create_graph: bool = False) -> Any:
        if self.closure is None:
            raise RuntimeError("this module needs a closure; pass one to optimizer.step(closure)")
        if create_graph:
            with torch.enable_grad():
                loss = self.closure(False)
                grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
            for p, g in zip(self.params, grads):
                p.grad = torch.zeros_like(p) if g is None else g
            return loss
        if backward:
            with torch.enable_grad():
                return self.closure(True)
        return self.closure(False)

    def get_loss(self, backward: bool, retain_graph: bool | None = None, create_graph: bool = False, at_x0: bool = True) -> Any:
        """The loss at the current parameters, evaluated once and cached (with gradients if ``backward``).

        With ``at_x0=False`` the loss is evaluated at whatever the parameters currently are, and
        nothing is cached.
        """
        if not at_x0:
            return self._call_closure(backward, retain_graph, create_graph)
        if self.loss is None or (backward and self.grads is None):
            if self.loss is not None:
                warnings.warn("the closure is evaluated again to compute gradients; request backward=True the first time", stacklevel=2)
            loss = self._call_closure(backward, retain_graph, create_graph)
            self.loss = self.loss_approx = loss
            if backward:
                self.grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if self.parent is not None:
            self._propagate_to_parent(backward)
        return self.loss

    def _propagate_to_parent(self, backward: bool) -> None:
        par = self.parent
        assert par is not None
        if par.loss is None:
            par.loss = par.loss_approx = self.loss
        if backward and par.grads is None:
            par.grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in par.params]

    def get_grads(self, retain_graph: bool | None = None, create_graph: bool = False, at_x0: bool = True) -> list[torch.Tensor]:
        """Gradients at the current parameters (evaluating the closure if needed)."""
        if not at_x0:
            self.get_loss(True, retain_graph, create_graph, at_x0=False)
            return [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if self.grads is None:
            self.get_loss(True, retain_graph, create_graph)
        assert self.grads is not None
        return self.grads

    def get_loss_grads(self, retain_graph: bool | None = None, create_graph: bool = False, at_x0: bool = True) -> tuple[Any, list[torch.Tensor]]:
        if not at_x0:
            loss = self.get_loss(True, retain_graph, create_graph, at_x0=False)
            return loss, [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        grads = self.get_grads(retain_graph, create_graph)
        return self.loss, grads

    def evaluate_batch(self, points: Sequence[Point], backward: bool = False) -> list[EvalResult]:
        """Evaluates the objective at several points, as one batch when the closure can.

        Each point is a list of tensors shaped like ``params`` (or a
        :class:`~torchzero.core.evaluation.Perturbation`). The parameters are left as they were.
        """
        if not points:
            return []
        closure = self.closure
        if closure is None:
            raise RuntimeError("this module needs a closure; pass one to optimizer.step(closure)")
        if hasattr(closure, "evaluate_batch"):
            results = closure.evaluate_batch(points, backward)
            if len(results) != len(points):
                raise RuntimeError(f"evaluator returned {len(results)} results for {len(points)} points")
        else:
            results = []
            saved = [p.detach().clone() for p in self.params]
            try:
                with torch.no_grad():
                    for point in points:
                        for p, x in zip(self.params, materialize(point)):
                            p.copy_(x)
                        with torch.enable_grad() if backward else torch.no_grad():
                            loss = closure(backward)
                        grads = None
                        if backward:
                            grads = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in self.params]
                        results.append(EvalResult(loss, grads))
            finally:
                with torch.no_grad():
                    for p, s in zip(self.params, saved):
                        p.copy_(s)
        return results

    # -- update ----------------------------------------------------------------
    def get_updates(self) -> list[torch.Tensor]:
        """The update, owned by this objective (safe to modify in place).

        Initialised from the gradients; the gradients are copied only when a module asks to
        modify the update in place.
        """
        if self.updates is None:
            self.updates = self.get_grads()
            self._updates_owned = False
        if not self._updates_owned:
            self.updates = [u.clone() for u in self.updates]
            self._updates_owned = True
        return self.updates

    def peek_updates(self) -> list[torch.Tensor]:
        """The update for reading only: may alias the gradients. Do not modify in place."""
        if self.updates is None:
            self.updates = self.get_grads()
            self._updates_owned = False
        return self.updates

    def set_updates(self, updates: Sequence[torch.Tensor] | None, owned: bool = True) -> None:
        """Replaces the update. ``owned=False`` if the tensors belong to someone else (copy before writing)."""
        self.updates = None if updates is None else list(updates)
        self._updates_owned = owned

    def clone(self, clone_updates: bool, parent: "Objective | None" = None) -> "Objective":
        """A shallow copy sharing closure, hooks, attrs and storage.

        ``clone_updates`` copies the update tensors. ``is_last`` and friends are not copied.
        ``parent`` is set when the copy's parameters are a different view of the same problem
        (projections): loss and gradients computed by the copy are then handed to the parent.
        """
        c = Objective(self.params, self.closure, None, self.model, self.current_step, parent, self.modular, self.storage)
        for name in _SHARED_WITH_CLONES:
            setattr(c, name, getattr(self, name))
        if clone_updates and self.updates is not None:
            c.set_updates([u.clone() for u in self.updates], owned=True)
        else:
            c.set_updates(self.updates, owned=False)
        return c

    def update_attrs_from_clone_(self, other: "Objective") -> None:
        """Takes loss / gradients a clone computed, if this objective has none yet."""
        if self.loss is None:
            self.loss = other.loss
        if self.loss_approx is None:
            self.loss_approx = other.loss_approx
        if self.grads is None:
            self.grads = other.grads
        if other.should_terminate is not None:
            self.should_terminate = other.should_terminate

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def update_parameters(self) -> None:
        """Subtracts the update from the parameters (honouring ``skip_update``)."""
        if self.skip_update:
            return
        upd = self.peek_updates()
        with torch.no_grad():
            torch._foreach_sub_(self.params, upd)

    def apply_post_step_hooks(self, modules: Sequence["Module"]) -> None:
        for hook in self.post_step_hooks:
            hook(self, tuple(modules))

    # -- second order ----------------------------------------------------------
    def hessian_vector_product(self, z: Sequence[torch.Tensor], rgrad: Sequence[torch.Tensor] | None, at_x0: bool,
                               hvp_method: HVPMethod, h: float, retain_graph: bool = False
                               ) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """Hessian-vector product ``H z`` at the current parameters; returns ``(Hz, rgrad)``.

        * ``autograd`` / ``batched_autograd``: exact, by differentiating ``g . z`` (needs a closure
          that supports ``create_graph``); ``rgrad`` is a gradient with a graph, reused between calls;
        * ``fd_forward``: ``(g(x + h z/|z|) - g(x)) |z| / h`` (one extra gradient);
        * ``fd_central``: ``(g(x + h z/|z|) - g(x - h z/|z|)) |z| / (2h)`` (two extra gradients).
        """
        from .hvp import hvp
        return hvp(self, z, rgrad, at_x0, hvp_method, h, retain_graph)

    def hessian(self, hessian_method: str = "batched_autograd", h: float = 1e-3, at_x0: bool = True
                ) -> tuple[Any, list[torch.Tensor], torch.Tensor]:
        """``(loss, grads, H)`` at the current parameters, ``H`` the ``n x n`` Hessian over all
        parameters as one vector (see :mod:`torchzero.core.hessian` for ``hessian_method``)."""
        from .hessian import hessian
        return hessian(self, hessian_method, h, at_x0)
