"""Miscellaneous modules: loss scaling, grafting, consecutive-update statistics, debugging prints,
inner loops, mini-batch support, per-parameter splits and module switching."""
from .debug import PrintLoss, PrintParams, PrintShape, PrintUpdate
from .misc import (
    DivByLoss, FillLoss, GradSign, GraftGradToUpdate, GraftToGrad, GraftToParams, HpuEstimate, LastAbsoluteRatio,
    LastDifference, LastGradDifference, LastProduct, LastRatio, MulByLoss, NoiseSign, Previous, RandomHvp, Relative,
    SaveBest, UpdateSign,
)
from .multistep import Multistep, NegateOnLossIncrease, Online, Sequential
from .split import Split
from .switch import Alternate, Switch

__all__ = [
    "DivByLoss", "FillLoss", "GradSign", "GraftGradToUpdate", "GraftToGrad", "GraftToParams", "HpuEstimate",
    "LastAbsoluteRatio", "LastDifference", "LastGradDifference", "LastProduct", "LastRatio", "MulByLoss", "NoiseSign",
    "Previous", "RandomHvp", "Relative", "SaveBest", "UpdateSign",
    "PrintLoss", "PrintParams", "PrintShape", "PrintUpdate",
    "Multistep", "NegateOnLossIncrease", "Online", "Sequential",
    "Split", "Alternate", "Switch",
]
