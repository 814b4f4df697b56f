"""Projections: run modules on a transformed view of the parameters, gradients and update."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import ChainMap
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from ...core.module import Module
from ...core.objective import Objective
from ...utils.params import vec_to_tensors


def _storages(ts: Iterable[torch.Tensor | None]) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in ts if t is not None and t.numel() > 0}


def _aliases(outs: Sequence[torch.Tensor], ins: Iterable[torch.Tensor | None]) -> bool:
    """Whether any of ``outs`` shares memory with any of ``ins``."""
    s = _storages(ins)
    return any(t.numel() > 0 and t.untyped_storage().data_ptr() in s for t in outs)


class ProjectionBase(Module, ABC):
    """Base class of projections: ``modules`` step in a projected space.

    At each step the update (``project_update``), the gradients (``project_grad``) and the
    parameters (``project_params``) are mapped to the projected space with :meth:`project`; the
    modules step there on an objective whose closure evaluates the original objective at
    ``unproject(projected params)`` and returns the projected gradients; the resulting update is
    mapped back with :meth:`unproject`. Loss and gradients evaluated in the projected space are also
    handed to the original objective.

    The projected parameters are persistent tensors, so the modules' per-parameter state survives
    from step to step (and through ``state_dict``). With ``project_params=False`` they are stand-ins
    that only key that state: the modules may then evaluate the closure only at the current point.

    Subclasses implement :meth:`project` and :meth:`unproject`; ``current`` tells which of
    ``"params"``, ``"grads"`` and ``"update"`` is being mapped.

    Args:
        modules: modules applied in the projected space.
        project_update: project the update.
        project_params: project the parameters (needed by modules that use the closure at other points).
        project_grad: project the gradients (separately from the update).
        defaults: default settings.
    """

    def __init__(self, modules: Module | Sequence[Module], project_update=True, project_params=False,
                 project_grad=False, defaults: dict[str, Any] | None = None):
        super().__init__(defaults)
        self.set_child("modules", modules)
        self._project_update = bool(project_update)
        self._project_params = bool(project_params)
        self._project_grad = bool(project_grad)

    @abstractmethod
    def project(self, tensors: list[torch.Tensor], params: list[torch.Tensor], grads: list[torch.Tensor] | None,
                loss: torch.Tensor | None, states: list[dict[str, Any]], settings: list[ChainMap[str, Any]],
                current: str) -> Iterable[torch.Tensor]:
        """Maps ``tensors`` (shaped like ``params``) to the projected space."""

    @abstractmethod
    def unproject(self, projected_tensors: list[torch.Tensor], params: list[torch.Tensor], grads: list[torch.Tensor] | None,
                  loss: torch.Tensor | None, states: list[dict[str, Any]], settings: list[ChainMap[str, Any]],
                  current: str) -> Iterable[torch.Tensor]:
        """Maps ``projected_tensors`` back to tensors shaped like ``params``."""

    # -- persistent projected parameters -------------------------------------------------
    def _rekey(self, old: Sequence[torch.Tensor], new: Sequence[torch.Tensor]) -> None:
        for m in self.modules():
            for o, n in zip(old, new):
                if o in m.state:
                    m.state[n] = m.state.pop(o)

    def _stable_params(self, values: Sequence[torch.Tensor], group: dict[str, Any]) -> list[torch.Tensor]:
        """Persistent writable tensors holding ``values`` (the same objects at every step)."""
        cur = self._fake_params.get("projected")
        same_layout = cur is not None and len(cur) == len(values) and all(
            c.shape == v.shape and c.dtype == v.dtype and c.device == v.device for c, v in zip(cur, values))
        if same_layout and all(c._base is None for c in cur):  # type: ignore[union-attr]
            with torch.no_grad():
                for c, v in zip(cur, values):  # type: ignore[arg-type]
                    c.copy_(v)
            return cur  # type: ignore[return-value]
        new = [v.detach().clone() for v in values]
        if same_layout:  # stand-ins recreated by load_state_dict: move the modules' state to the new tensors
            self._rekey(cur, new)  # type: ignore[arg-type]
        self._fake_params["projected"] = new
        self.children["modules"]._set_global_groups({p: group for p in new})
        return new

    def _key_params(self, like: Sequence[torch.Tensor], group: dict[str, Any]) -> list[torch.Tensor]:
        before = self._fake_params.get("projected_keys")
        keys = self.get_fake_params("projected_keys", like)
        if keys is not before:
            self.children["modules"]._set_global_groups({p: group for p in keys})
        return keys

    # -- stepping ----------------------------------------------------------------------
    def apply(self, objective: Objective) -> Objective:
        params = objective.params
        states = [self.state[p] for p in params]
        settings = [self.settings[p] for p in params]
        group = self.settings.groups.get(params[0], {})

        def proj(ts: Sequence[torch.Tensor], current: str) -> list[torch.Tensor]:
            return list(self.project(list(ts), params, objective.grads, objective.loss, states, settings, current))

        def unproj(ts: Sequence[torch.Tensor], current: str) -> list[torch.Tensor]:
            return list(self.unproject(list(ts), params, objective.grads, objective.loss, states, settings, current))

        proj_update = None
        if self._project_update and (objective.updates is not None or objective.grads is not None):
            proj_update = proj(objective.peek_updates(), "update")
        proj_grads = proj(objective.grads, "grads") if self._project_grad and objective.grads is not None else None

        if self._project_params:
            values = proj([p.detach() for p in params], "params")
            pparams = self._stable_params(values, group)
            snapshot = [v.clone() for v in pparams]
        else:
            like = proj_update if proj_update is not None else proj_grads
            if like is None:
                like = proj([p.detach() for p in params], "params")
            pparams = self._key_params(like, group)
            snapshot = None

        x0: list[torch.Tensor] | None = None
        moved = False

        def restore() -> None:
            nonlocal moved
            if moved and x0 is not None:
                with torch.no_grad():
                    torch._foreach_copy_(params, x0)
            moved = False

        original = objective.closure

        def closure(backward: bool = True) -> Any:
            nonlocal x0, moved
            assert original is not None
            if snapshot is not None:
                if all(torch.equal(a, b) for a, b in zip(pparams, snapshot)):
                    restore()
                else:
                    if x0 is None:
                        x0 = [p.detach().clone() for p in params]
                    with torch.no_grad():
                        for p, x in zip(params, unproj([t.detach() for t in pparams], "params")):
                            p.copy_(x)
                    moved = True
            loss = original(backward)
            if backward:
                g = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
                for pp, pg in zip(pparams, proj(g, "grads")):
                    pp.grad = pg
            return loss

        sub = objective.clone(clone_updates=False, parent=objective)
        sub.params = pparams
        sub.closure = closure if original is not None else None
        sub.grads = proj_grads
        if proj_update is not None:
            ins = list(objective.peek_updates()) + list(objective.grads or [])
            sub.set_updates(proj_update, owned=objective._updates_owned or not _aliases(proj_update, ins))
        else:
            sub.set_updates(None)
        try:
            sub = self.children["modules"].step(sub)
        finally:
            restore()

        objective.update_attrs_from_clone_(sub)
        if sub.skip_update:
            # the modules moved the projected parameters themselves
            if snapshot is not None and not all(torch.equal(a, b) for a, b in zip(pparams, snapshot)):
                with torch.no_grad():
                    for p, x in zip(params, unproj([t.detach() for t in pparams], "params")):
                        p.copy_(x)
            objective.skip_update = True
            objective.set_updates([torch.zeros_like(p) for p in params])
            return objective
        pupd = sub.peek_updates()
        out = unproj(pupd, "update")
        owned = sub._updates_owned or not _aliases(out, pupd)
        if _aliases(out, params):
            out, owned = [t.clone() for t in out], True
        objective.set_updates(out, owned=owned)
        return objective


class VectorProjection(ProjectionBase):
    """Concatenates all parameters into one vector: the modules see a single 1-D tensor."""

    def __init__(self, modules: Module | Sequence[Module], project_update=True, project_params=True, project_grad=True):
        super().__init__(modules, project_update=project_update, project_params=project_params, project_grad=project_grad)

    def project(self, tensors, params, grads, loss, states, settings, current):
        return [torch.cat([t.reshape(-1) for t in tensors])]

    def unproject(self, projected_tensors, params, grads, loss, states, settings, current):
        return vec_to_tensors(projected_tensors[0], params)


class ScalarProjection(ProjectionBase):
    """Splits all parameters into scalars: the modules see one 0-d tensor per entry."""

    def __init__(self, modules: Module | Sequence[Module], project_update=True, project_params=True, project_grad=True):
        super().__init__(modules, project_update=project_update, project_params=project_params, project_grad=project_grad)

    def project(self, tensors, params, grads, loss, states, settings, current):
        return [x for t in tensors for x in t.reshape(-1).unbind(0)]

    def unproject(self, projected_tensors, params, grads, loss, states, settings, current):
        out = []
        i = 0
        for p in params:
            n = p.numel()
            out.append(torch.stack(projected_tensors[i:i + n]).view_as(p) if n else torch.empty_like(p))
            i += n
        return out
