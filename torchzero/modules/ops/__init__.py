"""Operations: arithmetic on the update and on the outputs of other modules, accumulators,
moments, elementwise functions and utilities."""
from .accumulate import AccumulateMaximum, AccumulateMean, AccumulateMinimum, AccumulateProduct, AccumulateSum
from .binary import (
    Add, BinaryOperationBase, Clip, CopyMagnitude, CopySign, Div, GraftInputToOutput, GraftOutputToInput, GramSchimdt,
    Maximum, Minimum, Mul, Pow, RCopySign, RDiv, RPow, RSub, Sub, Threshold,
)
from .ema_sq import EMA_SQ_FN, SQRT_EMA_SQ_FN
from .higher_level import CenteredEMASquared, CenteredSqrtEMASquared, Debias, Debias2, EMASquared, SqrtEMASquared
from .multi import ClipModules, DivModules, Graft, LerpModules, MultiOperationBase, PowModules, SubModules
from .reduce import MaximumModules, Mean, MinimumModules, Prod, ReduceOperationBase, Sum, WeightedMean, WeightedSum
from .unary import Abs, CustomUnaryOperation, Exp, NanToNum, Negate, Reciprocal, Sign, Sqrt, UnaryLambda, UnaryParameterwiseLambda
from .utility import Clone, Fill, Grad, GradToNone, Identity, Noop, Ones, Params, Randn, RandomSample, Uniform, UpdateToNone, Zeros

__all__ = [
    # accumulate
    "AccumulateMaximum", "AccumulateMean", "AccumulateMinimum", "AccumulateProduct", "AccumulateSum",
    # binary
    "Add", "BinaryOperationBase", "Clip", "CopyMagnitude", "CopySign", "Div", "GraftInputToOutput", "GraftOutputToInput",
    "GramSchimdt", "Maximum", "Minimum", "Mul", "Pow", "RCopySign", "RDiv", "RPow", "RSub", "Sub", "Threshold",
    # higher level
    "CenteredEMASquared", "CenteredSqrtEMASquared", "Debias", "Debias2", "EMASquared", "SqrtEMASquared",
    # multi
    "ClipModules", "DivModules", "Graft", "LerpModules", "MultiOperationBase", "PowModules", "SubModules",
    # reduce
    "MaximumModules", "Mean", "MinimumModules", "Prod", "ReduceOperationBase", "Sum", "WeightedMean", "WeightedSum",
    # unary
    "Abs", "CustomUnaryOperation", "Exp", "NanToNum", "Negate", "Reciprocal", "Sign", "Sqrt", "UnaryLambda",
    "UnaryParameterwiseLambda",
    # utility
    "Clone", "Fill", "Grad", "GradToNone", "Identity", "Noop", "Ones", "Params", "Randn", "RandomSample", "Uniform",
    "UpdateToNone", "Zeros",
    # opt_utils helpers
    "EMA_SQ_FN", "SQRT_EMA_SQ_FN",
]
