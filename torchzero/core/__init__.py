"""The core of torchzero: modules, chains, transforms, the objective and the optimizer."""
from .chain import Chain, Chainable, maybe_chain
from .closure import normalize_closure
from .evaluation import BatchEvaluator, EvalResult, FunctionEvaluator, Perturbation, ThreadPoolEvaluator
from .functional import step, step_tensors
from .module import Module
from .objective import Objective
from .optimizer import Modular, Optimizer
from .reformulation import Reformulation
from .spec import SpecError, from_spec, module_names, register_callable, to_spec
from .transform import TensorTransform, TensorwiseTransform, Transform

Var = Objective  # the older name

__all__ = [
    "Chain", "Chainable", "maybe_chain", "normalize_closure", "BatchEvaluator", "EvalResult", "FunctionEvaluator",
    "Perturbation", "ThreadPoolEvaluator", "step", "step_tensors", "Module", "Objective", "Var", "Optimizer", "Modular",
    "Reformulation", "SpecError", "from_spec", "module_names", "register_callable", "to_spec", "TensorTransform",
    "TensorwiseTransform", "Transform",
]
