"""Adaptive (diagonally preconditioned) methods."""
from .adagrad import Adagrad, AdagradNorm
from .adam import Adam
from .adan import Adan
from .adaptive_heavyball import AdaptiveHeavyBall
from .aegd import AEGD
from .lion import Lion
from .mars import MARSCorrection
from .orthograd import OrthoGrad
from .rmsprop import RMSprop
from .rprop import BacktrackOnSignChange, Rprop, ScaleLRBySignChange, SignConsistencyLRs, SignConsistencyMask

__all__ = [
    "AEGD", "Adagrad", "AdagradNorm", "Adam", "Adan", "AdaptiveHeavyBall", "BacktrackOnSignChange", "Lion",
    "MARSCorrection", "OrthoGrad", "RMSprop", "Rprop", "ScaleLRBySignChange", "SignConsistencyLRs",
    "SignConsistencyMask",
]
