"""Wrappers: other optimizers as modules."""
from .optim_wrapper import Wrap

__all__ = ["Wrap"]
