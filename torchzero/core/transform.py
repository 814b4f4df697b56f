"""Transforms: modules whose only children are optional.

:class:`Transform` works on the :class:`Objective` with explicit lists of per-parameter states and
settings. :class:`TensorTransform` works on plain lists of tensors (the update) and never sees the
objective, which makes it reusable on any buffer (``inner_step_tensors``).

Both take an optional ``inner`` module: state is updated from the incoming update, the update is
then passed through ``inner``, and the transform is applied to what ``inner`` returned.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ..utils.params import tensors_to_vec, vec_to_tensors
from .module import Module

if TYPE_CHECKING:
    from .chain import Chainable
    from .objective import Objective

_STEP = "__step"


class Transform(Module):
    """A module with optional children that works with per-parameter ``states`` and ``settings``.

    Subclasses override :meth:`update_states` (optional) and :meth:`apply_states`.

    Args:
        defaults: default settings.
        update_freq: update the state every this many steps (apply runs every step).
        inner: module(s) the update goes through between ``update`` and ``apply``.
        uses_grad: whether the transform reads the gradient (makes the objective compute it).
        uses_loss: whether the transform reads the loss.
    """

    def __init__(self, defaults: dict[str, Any] | None = None, update_freq: int = 1, inner: "Chainable | None" = None,
                 uses_grad: bool = False, uses_loss: bool = False):
        super().__init__(defaults)
        if update_freq < 1:
            raise ValueError(f"update_freq must be >= 1, got {update_freq}")
        self._update_freq = int(update_freq)
        self._uses_grad = uses_grad
        self._uses_loss = uses_loss
        if inner is not None:
            self.set_child("inner", inner)

    # hooks ---------------------------------------------------------------
    def update_states(self, objective: "Objective", states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        """Updates ``states``; must not modify ``objective.updates``."""

    def apply_states(self, objective: "Objective", states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> "Objective":
        """Changes ``objective`` using ``states`` and returns it."""
        raise NotImplementedError(f"{type(self).__name__} does not implement apply_states")

    # plumbing ------------------------------------------------------------
    def _states_settings(self, params: Sequence[torch.Tensor]) -> tuple[list[dict[str, Any]], list[Mapping[str, Any]]]:
        st = self.state
        s = self.settings
        return [st[p] for p in params], [s[p] for p in params]

    def _should_update(self) -> bool:
        n = self.global_state.get(_STEP, 0)
        self.global_state[_STEP] = n + 1
        return n % self._update_freq == 0

    def update(self, objective: "Objective") -> None:
        if self._should_update():
            states, settings = self._states_settings(objective.params)
            self.update_states(objective, states, settings)

    def apply(self, objective: "Objective") -> "Objective":
        if "inner" in self.children:
            objective = self.inner_step("inner", objective)
        states, settings = self._states_settings(objective.params)
        return self.apply_states(objective, states, settings)


class TensorTransform(Transform):
    """A transform of lists of tensors.

    Override one of :meth:`single_tensor_update` / :meth:`multi_tensor_update` (optional), and
    one of :meth:`single_tensor_apply` / :meth:`multi_tensor_apply`. The ``initialize`` hooks run
    once, before the first update.

    Args:
        concat_params: work on all tensors concatenated into one vector (full-matrix methods).
        inplace: whether ``apply`` may modify its input tensors in place. A transform whose apply
            always returns new tensors sets this to False, which saves a copy of the gradient.
    """

    inplace: bool = True

    def __init__(self, defaults: dict[str, Any] | None = None, update_freq: int = 1, concat_params: bool = False,
                 uses_grad: bool = False, uses_loss: bool = False, inner: "Chainable | None" = None):
        super().__init__(defaults, update_freq=update_freq, inner=inner, uses_grad=uses_grad, uses_loss=uses_loss)
        self._concat_params = concat_params

    # single-tensor hooks ------------------------------------------------------
    def single_tensor_initialize(self, tensor: torch.Tensor, param: torch.Tensor, grad: torch.Tensor | None, loss: Any,
                                 state: dict[str, Any], setting: Mapping[str, Any]) -> None:
        """Initializes ``state`` before the first update."""

    def single_tensor_update(self, tensor: torch.Tensor, param: torch.Tensor, grad: torch.Tensor | None, loss: Any,
                             state: dict[str, Any], setting: Mapping[str, Any]) -> None:
        """Updates ``state``; must not modify ``tensor``."""

    def single_tensor_apply(self, tensor: torch.Tensor, param: torch.Tensor, grad: torch.Tensor | None, loss: Any,
                            state: dict[str, Any], setting: Mapping[str, Any]) -> torch.Tensor:
        """Returns the transformed ``tensor`` (may modify it in place when ``inplace``)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither single_tensor_apply nor multi_tensor_apply")

    # multi-tensor hooks -------------------------------------------------------
    def multi_tensor_initialize(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: list[torch.Tensor] | None,
                                loss: Any, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        """Initializes ``states`` before the first update; defaults to the single-tensor hook."""
        g = grads if grads is not None else [None] * len(tensors)
        for t, p, gi, st, se in zip(tensors, params, g, states, settings):
            self.single_tensor_initialize(t, p, gi, loss, st, se)

    def multi_tensor_update(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: list[torch.Tensor] | None,
                            loss: Any, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        """Updates ``states``; must not modify ``tensors``. Defaults to the single-tensor hook."""
        g = grads if grads is not None else [None] * len(tensors)
        for t, p, gi, st, se in zip(tensors, params, g, states, settings):
            self.single_tensor_update(t, p, gi, loss, st, se)

    def multi_tensor_apply(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: list[torch.Tensor] | None,
                           loss: Any, states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> Sequence[torch.Tensor]:
        """Returns the transformed ``tensors``; defaults to the single-tensor hook."""
        g = grads if grads is not None else [None] * len(tensors)
        return [self.single_tensor_apply(t, p, gi, loss, st, se) for t, p, gi, st, se in zip(tensors, params, g, states, settings)]

    # plumbing -----------------------------------------------------------------
    def _gather(self, objective: "Objective", tensors: list[torch.Tensor]):
        params = objective.params
        grads = objective.get_grads() if self._uses_grad else None
        loss = objective.get_loss(False) if self._uses_loss else None
        if self._concat_params:
            setting = self.settings[params[0]]
            tensors = [tensors_to_vec(tensors)]
            vparams = self.get_fake_params("__concat", tensors)
            if grads is not None:
                grads = [tensors_to_vec(grads)]
            return tensors, vparams, grads, loss, [self.state[vparams[0]]], [setting]
        states, settings = self._states_settings(params)
        return tensors, params, grads, loss, states, settings

    def update_states(self, objective: "Objective", states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> None:
        tensors, params, grads, loss, states, settings = self._gather(objective, objective.peek_updates())
        if not self.global_state.get("__initialized"):
            self.multi_tensor_initialize(tensors, params, grads, loss, states, settings)
            self.global_state["__initialized"] = True
        self.multi_tensor_update(tensors, params, grads, loss, states, settings)

    def apply_states(self, objective: "Objective", states: list[dict[str, Any]], settings: Sequence[Mapping[str, Any]]) -> "Objective":
        inputs = objective.get_updates() if self.inplace else objective.peek_updates()
        tensors, params, grads, loss, states, settings = self._gather(objective, inputs)
        out = list(self.multi_tensor_apply(tensors, params, grads, loss, states, settings))
        if self._concat_params:
            out = vec_to_tensors(out[0], objective.params)
        objective.set_updates(out, owned=True)
        return objective

    def update(self, objective: "Objective") -> None:
        if self._should_update():
            self.update_states(objective, [], [])

    def apply(self, objective: "Objective") -> "Objective":
        if "inner" in self.children:
            objective = self.inner_step("inner", objective)
        return self.apply_states(objective, [], [])


# names used by the older API
TensorwiseTransform = TensorTransform
