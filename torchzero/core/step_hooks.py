"""``torch.optim``'s step wrapper, run only when it has something to do.

``torch.optim.Optimizer`` wraps every ``step`` in :meth:`~torch.optim.Optimizer.profile_hook_step`:
a ``record_function`` profiler annotation around the step, plus the registered step pre- and
post-hooks (per optimizer and global). The annotation is a dispatched operator call on entry and on
exit, paid on every step even when no profiler runs; for a small problem (a 10-dimensional SPSA
step, an ask/tell study) it is about a tenth of the step.

:func:`hooks_when_needed` calls torch's own wrapper whenever a hook is registered or a profiler is
running, so hooks, their argument rewriting and the profiler's ``Optimizer.step#...`` events behave
exactly as in ``torch.optim``; otherwise it calls the step directly.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks


def hooks_when_needed(step: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` wrapped so that torch's step hooks and profiler annotation run only when needed.

    The result is marked ``hooked``, so ``torch.optim.Optimizer.__init__`` does not wrap it again."""
    full = torch.optim.Optimizer.profile_hook_step(step)

    @functools.wraps(step)
    def wrapper(self: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
        if (self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks or _global_optimizer_pre_hooks
                or _global_optimizer_post_hooks or torch.autograd._profiler_enabled()):
            return full(self, *args, **kwargs)
        return step(self, *args, **kwargs)

    wrapper.hooked = True  # type: ignore[attr-defined]
    return wrapper
