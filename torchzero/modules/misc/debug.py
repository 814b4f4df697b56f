"""Modules that print what flows through a chain (for debugging); they do not change it.

``print_fn`` decides where the text goes: any callable taking one string (the default ``print``
writes to ``sys.stdout``, which ``contextlib.redirect_stdout`` redirects; ``logger.info`` sends it
to a logger), a ``logging.Logger`` (logged at INFO level) or a text stream such as a file or
``io.StringIO`` (one line per call).
"""
from __future__ import annotations

import logging
from typing import Any

from ...core.module import Module
from ...core.objective import Objective


_PRINT = print  # (the default ``print_fn``: kept as None, see _Print)


def _emit(print_fn: Any, text: str, value: Any) -> None:
    if isinstance(print_fn, logging.Logger):
        print_fn.info("%s%s", text, value)
    elif print_fn is None:
        print(f"{text}{value}")  # looks print and sys.stdout up at call time, so redirect_stdout works
    elif callable(print_fn):
        print_fn(f"{text}{value}")
    elif hasattr(print_fn, "write"):
        print_fn.write(f"{text}{value}\n")
    else:
        raise TypeError(f"print_fn must be a callable, a logging.Logger or a text stream, got {type(print_fn).__name__}")


class _Print(Module):
    def __init__(self, text: str, print_fn: Any):
        if not (callable(print_fn) or isinstance(print_fn, logging.Logger) or hasattr(print_fn, "write")):
            raise TypeError(f"print_fn must be a callable, a logging.Logger or a text stream, got {type(print_fn).__name__}")
        super().__init__()
        self.text = text
        # the built-in print is kept as None and looked up when printing: a module holding the
        # function itself no longer pickles once something (Ray's tqdm support) replaces builtins.print
        self.print_fn = None if print_fn is _PRINT or print_fn is print else print_fn

    def value(self, objective: Objective) -> Any:
        raise NotImplementedError

    def apply(self, objective: Objective) -> Objective:
        _emit(self.print_fn, self.text, self.value(objective))
        return objective


class PrintLoss(_Print):
    """Prints the loss at the current parameters (evaluating it if nobody has yet).

    Args:
        text: prefix of the printed line.
        print_fn: where to print (see the module docstring).
    """

    def __init__(self, text="loss = ", print_fn=print):
        super().__init__(text, print_fn)

    def value(self, objective: Objective) -> Any:
        from .misc import loss_for
        return loss_for(objective)


class PrintParams(_Print):
    """Prints the parameters.

    Args:
        text: prefix of the printed line.
        print_fn: where to print (see the module docstring).
    """

    def __init__(self, text="params = ", print_fn=print):
        super().__init__(text, print_fn)

    def value(self, objective: Objective) -> Any:
        return [p.detach() for p in objective.params]


class PrintShape(_Print):
    """Prints the shapes of the update tensors.

    Args:
        text: prefix of the printed line.
        print_fn: where to print (see the module docstring).
    """

    def __init__(self, text="shapes = ", print_fn=print):
        super().__init__(text, print_fn)

    def value(self, objective: Objective) -> Any:
        return [tuple(u.shape) for u in objective.peek_updates()]


class PrintUpdate(_Print):
    """Prints the current update (the gradient if no module has changed it yet).

    Args:
        text: prefix of the printed line.
        print_fn: where to print (see the module docstring).
    """

    def __init__(self, text="update = ", print_fn=print):
        super().__init__(text, print_fn)

    def value(self, objective: Objective) -> Any:
        return objective.peek_updates()
