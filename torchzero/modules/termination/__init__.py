"""Termination criteria: modules that set ``Optimizer.should_terminate``."""
from .termination import (
    TerminateAfterNEvaluations, TerminateAfterNSeconds, TerminateAfterNSteps, TerminateAll, TerminateAny,
    TerminateByGradientNorm, TerminateByUpdateNorm, TerminateNever, TerminateOnLossReached, TerminateOnNoImprovement,
    TerminationCriteriaBase,
)

__all__ = [
    "TerminationCriteriaBase", "TerminateAfterNEvaluations", "TerminateAfterNSeconds", "TerminateAfterNSteps",
    "TerminateAll", "TerminateAny", "TerminateByGradientNorm", "TerminateByUpdateNorm", "TerminateNever",
    "TerminateOnLossReached", "TerminateOnNoImprovement",
]
