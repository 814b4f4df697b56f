"""Momentum, averaging and cautious updates."""
from .averaging import Averaging, MedianAveraging, WeightedAveraging
from .cautious import (Cautious, IntermoduleCautious, ScaleByGradCosineSimilarity, ScaleModulesByCosineSimilarity,
                       UpdateGradientSignConsistency)
from .momentum import EMA, NAG, HeavyBall

__all__ = [
    "Averaging", "MedianAveraging", "WeightedAveraging", "Cautious", "IntermoduleCautious", "ScaleByGradCosineSimilarity",
    "ScaleModulesByCosineSimilarity", "UpdateGradientSignConsistency", "EMA", "HeavyBall", "NAG",
]
