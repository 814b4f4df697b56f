"""torchzero: modular optimizers for PyTorch.

``tz.Optimizer(params, tz.m.Adam(), tz.m.LR(1e-3))`` chains modules into a
``torch.optim.Optimizer``; ``tz.m`` holds every module.
"""
from . import core
from .core import *  # noqa: F401,F403
from . import modules
from . import modules as m

__version__ = "0.1.0"
