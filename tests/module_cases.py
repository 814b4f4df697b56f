"""How to build each registered module for the invariance matrix (tests/test_invariance.py).

A module with no entry is built as ``[Module(), tz.m.LR(1e-2)]``. Add a :class:`ModuleCase` for a
module that needs arguments, a closure, or a particular chain. ``ABSTRACT`` names base classes
that are exercised through their subclasses.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torchzero as tz


@dataclass
class ModuleCase:
    build: Callable[[], list]
    needs_closure: bool = False
    """the module cannot step without a closure (the matrix checks that it says so clearly)."""
    steps: int = 4
    skip: dict[str, str] = field(default_factory=dict)
    """invariance check name -> reason it does not apply to this module."""


def _log1p(loss):
    """A loss transform for LambdaHomotopy that can travel in a spec (registered below)."""
    import torch
    return torch.log1p(loss)


tz.register_callable(_log1p, "tests.module_cases._log1p")


# second_order / least_squares: a plain closure calls backward itself, which frees the graph that
# autograd Hessians differentiate through; those modules document that the closure must accept backward.
_SO_SKIP = {"closure": "autograd Hessians need closure(backward=False) to return a loss with its graph; a plain closure calls backward itself"}

CASES: dict[str, ModuleCase] = {
    "LR": ModuleCase(lambda: [tz.m.LR(1e-2)]),
    "StepSize": ModuleCase(lambda: [tz.m.StepSize(1e-2)]),
    "Adam": ModuleCase(lambda: [tz.m.Adam(amsgrad=True), tz.m.LR(1e-2)]),
    # -- projections (issue 6) --
    "VectorProjection": ModuleCase(lambda: [tz.m.VectorProjection([tz.m.Adam(), tz.m.LR(0.5), tz.m.NegateOnLossIncrease(True)]), tz.m.LR(1e-2)], needs_closure=True),
    "ScalarProjection": ModuleCase(lambda: [tz.m.ScalarProjection(tz.m.Adam()), tz.m.LR(1e-2)]),
    "To": ModuleCase(lambda: [tz.m.To(tz.m.Adam(), dtype=__import__("torch").float64), tz.m.LR(1e-2)]),
    "ViewAsReal": ModuleCase(lambda: [tz.m.ViewAsReal([tz.m.Adam(), tz.m.GradSign()]), tz.m.LR(1e-2)]),
    # -- wrappers (issue 6) --
    "Wrap": ModuleCase(lambda: [tz.m.Wrap(__import__("torch").optim.Adam, lr=1.0, betas=(0.8, 0.99)), tz.m.LR(1e-2)]),
    # -- quasi_newton: full-matrix and diagonal methods (issue 8) --
    "BFGS": ModuleCase(lambda: [tz.m.BFGS(concat_params=False, scale_first=True), tz.m.LR(1e-2)]),
    "SR1": ModuleCase(lambda: [tz.m.SR1(inverse=False), tz.m.LR(1e-2)]),
    "DFP": ModuleCase(lambda: [tz.m.DFP(restart_interval=2, beta=0.3, update_freq=2), tz.m.LR(1e-2)]),
    "BroydenGood": ModuleCase(lambda: [tz.m.BroydenGood(inverse=False, init_scale=2.0), tz.m.LR(1e-2)]),
    # -- quasi_newton: self-scaling methods (self_scaling.py) --
    "SSVM": ModuleCase(lambda: [tz.m.SSVM(switch=(0.5, 0.5), concat_params=False), tz.m.LR(1e-2)]),
    "NewSSM": ModuleCase(lambda: [tz.m.NewSSM(type=2), tz.m.LR(1e-2)], needs_closure=True),
    # -- quasi_newton: SG2 (sg2.py); start_step=1 so that both the scaled-gradient and the Newton-like step run --
    "SG2": ModuleCase(lambda: [tz.m.SG2(n_first_step_samples=2, start_step=1, damping=1e-2, seed=0), tz.m.LR(1e-2)], needs_closure=True),
    # -- termination (issue 6) --
    "TerminateAfterNSteps": ModuleCase(lambda: [tz.m.LR(1e-2), tz.m.TerminateAfterNSteps(2)]),
    "TerminateAfterNEvaluations": ModuleCase(lambda: [tz.m.LR(1e-2), tz.m.TerminateAfterNEvaluations(3)]),
    "TerminateAfterNSeconds": ModuleCase(lambda: [tz.m.LR(1e-2), tz.m.TerminateAfterNSeconds(1e-3)]),
    "TerminateOnLossReached": ModuleCase(lambda: [tz.m.LR(1e-2), tz.m.TerminateOnLossReached(1.0)], needs_closure=True),
    "TerminateOnNoImprovement": ModuleCase(lambda: [tz.m.LR(1e-2), tz.m.TerminateOnNoImprovement(tol=0.1, n=2)], needs_closure=True),
    "TerminateByUpdateNorm": ModuleCase(lambda: [tz.m.LR(1e-2), tz.m.TerminateByUpdateNorm(tol=1.0, n=2, ord="linf")]),
    "TerminateAll": ModuleCase(lambda: [tz.m.LR(1e-2), tz.m.TerminateAll(tz.m.TerminateAfterNSteps(2), tz.m.TerminateByGradientNorm(1e3, n=1))]),
    "TerminateAny": ModuleCase(lambda: [tz.m.LR(1e-2), tz.m.TerminateAny(tz.m.TerminateAfterNSteps(3), tz.m.TerminateNever())]),
    # -- misc (issue 6) --
    "DivByLoss": ModuleCase(lambda: [tz.m.DivByLoss(), tz.m.LR(1e-2)], needs_closure=True),
    "MulByLoss": ModuleCase(lambda: [tz.m.MulByLoss(alpha=0.01), tz.m.LR(1e-2)], needs_closure=True),
    "FillLoss": ModuleCase(lambda: [tz.m.FillLoss(alpha=0.1), tz.m.LR(1e-2)], needs_closure=True),
    "RandomHvp": ModuleCase(lambda: [tz.m.RandomHvp(n_samples=2, hvp_method="central", seed=0), tz.m.LR(1e-2)], needs_closure=True),
    "SaveBest": ModuleCase(lambda: [tz.m.LR(1e-2), tz.m.SaveBest()], needs_closure=True),
    "PrintLoss": ModuleCase(lambda: [tz.m.PrintLoss(), tz.m.LR(1e-2)], needs_closure=True),
    "Multistep": ModuleCase(lambda: [tz.m.Multistep(tz.m.Adam(), 2), tz.m.LR(1e-2)], needs_closure=True),
    "Sequential": ModuleCase(lambda: [tz.m.Sequential([tz.m.Adam(), [tz.m.GradSign(), tz.m.LR(0.1)]], steps=2), tz.m.LR(1e-2)], needs_closure=True),
    "NegateOnLossIncrease": ModuleCase(lambda: [tz.m.LR(0.5), tz.m.NegateOnLossIncrease(backtrack=True)], needs_closure=True),
    "Online": ModuleCase(lambda: [tz.m.Online(tz.m.HpuEstimate()), tz.m.LR(1e-2)], needs_closure=True),
    "Split": ModuleCase(lambda: [tz.m.Split(_misc_is_matrix, true=tz.m.Adam(), false=[tz.m.GradSign(), tz.m.LR(0.5)]), tz.m.LR(1e-2)]),
    "Alternate": ModuleCase(lambda: [tz.m.Alternate(tz.m.Adam(), [tz.m.GradSign(), tz.m.LR(0.5)], steps=[2, 1]), tz.m.LR(1e-2)]),
    "Switch": ModuleCase(lambda: [tz.m.Switch(tz.m.Adam(), [tz.m.Previous(), tz.m.LR(0.5)], steps=2), tz.m.LR(1e-2)]),
    # -- grad_approximation / zeroth_order (issue 3) --
    "FDM": ModuleCase(lambda: [tz.m.FDM(), tz.m.LR(1e-2)], needs_closure=True),
    "RandomizedFDM": ModuleCase(lambda: [tz.m.RandomizedFDM(n_samples=2, seed=1), tz.m.LR(1e-2)], needs_closure=True),
    "SPSA": ModuleCase(lambda: [tz.m.SPSA(h=1e-2), tz.m.LR(1e-2)], needs_closure=True),
    "SPSA1": ModuleCase(lambda: [tz.m.SPSA1(h=0.1, n_samples=2, seed=3), tz.m.LR(1e-5)], needs_closure=True),
    "RDSA": ModuleCase(lambda: [tz.m.RDSA(h=1e-2, target="grad"), tz.m.LR(1e-2)], needs_closure=True),
    "GaussianSmoothing": ModuleCase(lambda: [tz.m.GaussianSmoothing(n_samples=4, seed=0), tz.m.LR(1e-2)], needs_closure=True),
    "MeZO": ModuleCase(lambda: [tz.m.MeZO(h=1e-2, target="update"), tz.m.LR(1e-2)], needs_closure=True),
    "ForwardGradient": ModuleCase(lambda: [tz.m.ForwardGradient(n_samples=2), tz.m.LR(1e-2)], needs_closure=True),
    "CD": ModuleCase(lambda: [tz.m.CD(h=1e-2), tz.m.LR(1e-2)], needs_closure=True),
    "GradientSampling": ModuleCase(lambda: [tz.m.GradientSampling([tz.m.LR(1e-2)], sigma=0.1, n=3, seed=0)], needs_closure=True),
    # -- sharpness / homotopy / accumulation (issue 3) --
    "SAM": ModuleCase(lambda: [tz.m.SAM(), tz.m.LR(1e-2)], needs_closure=True),
    "ASAM": ModuleCase(lambda: [tz.m.ASAM(p=3), tz.m.LR(1e-2)], needs_closure=True),
    "MSAM": ModuleCase(lambda: [tz.m.MSAM([tz.m.Adam(), tz.m.LR(1e-2)], weight_decay=1e-3)]),
    "MSAMMomentum": ModuleCase(lambda: [tz.m.MSAMMomentum(1e-2, nesterov=True, weight_decay=1e-3)]),
    "LambdaHomotopy": ModuleCase(lambda: [tz.m.LambdaHomotopy(_log1p), tz.m.LR(1e-2)], needs_closure=True),
    "SqrtHomotopy": ModuleCase(lambda: [tz.m.SqrtHomotopy(), tz.m.LR(1e-2)], needs_closure=True),
    "SquareHomotopy": ModuleCase(lambda: [tz.m.SquareHomotopy(), tz.m.LR(1e-5)], needs_closure=True),
    "ExpHomotopy": ModuleCase(lambda: [tz.m.LogHomotopy(), tz.m.ExpHomotopy(), tz.m.LR(1e-2)], needs_closure=True),
    "LogHomotopy": ModuleCase(lambda: [tz.m.LogHomotopy(), tz.m.LR(1e-2)], needs_closure=True),
    "GradientAccumulation": ModuleCase(lambda: [tz.m.GradientAccumulation(2), tz.m.LR(1e-2)]),
    "PerturbWeights": ModuleCase(lambda: [tz.m.PerturbWeights(alpha=0.05), tz.m.LR(1e-2)], needs_closure=True),
    "WeightDropout": ModuleCase(lambda: [tz.m.WeightDropout(0.2), tz.m.LR(1e-2)], needs_closure=True),
    "Dropout": ModuleCase(lambda: [tz.m.Dropout(0.3, graft=True), tz.m.LR(1e-2)]),
    "RandomReinitialize": ModuleCase(lambda: [tz.m.RandomReinitialize(p_reinit=0.7, p_weights=0.5, store_every=2, beta=0.5, seed=0), tz.m.LR(1e-2)], skip={"closure": "without a closure the gradient was computed before the weights were reset"}),
    "EscapeAnnealing": ModuleCase(lambda: [tz.m.LR(1e-2), tz.m.EscapeAnnealing(max_region=0.5, max_iter=20, tol=10.0, n_tol=1)], needs_closure=True),
    "SVRG": ModuleCase(lambda: [tz.m.SVRG(2, accum_steps=1), tz.m.LR(1e-2)], needs_closure=True, steps=5),
    # -- ops (issue 6) --
    "Add": ModuleCase(lambda: [tz.m.Add(tz.m.Mul(0.5), alpha=2), tz.m.Add(0.1), tz.m.LR(1e-2)]),
    "Sub": ModuleCase(lambda: [tz.m.Sub(tz.m.Sign(), alpha=0.5), tz.m.Sub(0.1), tz.m.LR(1e-2)]),
    "RSub": ModuleCase(lambda: [tz.m.RSub(tz.m.Mul(3)), tz.m.RSub(0.1), tz.m.LR(1e-2)]),
    "Mul": ModuleCase(lambda: [tz.m.Mul(tz.m.Abs()), tz.m.Mul(0.5), tz.m.LR(1e-2)]),
    "Div": ModuleCase(lambda: [tz.m.Div([tz.m.Abs(), tz.m.Add(1.0)]), tz.m.Div(2), tz.m.LR(1e-2)]),
    "RDiv": ModuleCase(lambda: [tz.m.Abs(), tz.m.Add(1.0), tz.m.RDiv(tz.m.Fill(1.0)), tz.m.RDiv(2.0), tz.m.LR(1e-2)]),
    "Pow": ModuleCase(lambda: [tz.m.Pow(3), tz.m.Abs(), tz.m.Pow(tz.m.Fill(0.5)), tz.m.LR(1e-2)]),
    "RPow": ModuleCase(lambda: [tz.m.Clip(-2, 2), tz.m.RPow(2.0), tz.m.RPow(tz.m.Fill(0.5)), tz.m.LR(1e-2)]),
    "Clip": ModuleCase(lambda: [tz.m.Clip(-1, 1), tz.m.Clip(tz.m.Fill(-0.5), tz.m.Fill(0.5)), tz.m.LR(1e-2)]),
    "Maximum": ModuleCase(lambda: [tz.m.Maximum(tz.m.Mul(-1)), tz.m.Maximum(0.2), tz.m.LR(1e-2)]),
    "Minimum": ModuleCase(lambda: [tz.m.Minimum(tz.m.Mul(-1)), tz.m.Minimum(0.2), tz.m.LR(1e-2)]),
    "Threshold": ModuleCase(lambda: [tz.m.Threshold(0.0, 0.1, True), tz.m.Threshold(tz.m.Fill(1.0), tz.m.Mul(0.5), False), tz.m.LR(1e-2)]),
    "CopySign": ModuleCase(lambda: [tz.m.CopySign(tz.m.Randn()), tz.m.LR(1e-2)]),
    "CopyMagnitude": ModuleCase(lambda: [tz.m.CopyMagnitude(tz.m.Randn()), tz.m.LR(1e-2)]),
    "RCopySign": ModuleCase(lambda: [tz.m.RCopySign(tz.m.Randn()), tz.m.LR(1e-2)]),
    "GramSchimdt": ModuleCase(lambda: [tz.m.GramSchimdt(tz.m.Randn()), tz.m.LR(1e-2)]),
    "GraftInputToOutput": ModuleCase(lambda: [tz.m.GraftInputToOutput(tz.m.Sign()), tz.m.GraftInputToOutput(tz.m.Randn(), tensorwise=False, ord="mad"), tz.m.LR(1e-2)]),
    "GraftOutputToInput": ModuleCase(lambda: [tz.m.GraftOutputToInput(tz.m.Sign()), tz.m.GraftOutputToInput(tz.m.Randn(), tensorwise=False, ord=1), tz.m.LR(1e-2)]),
    "Graft": ModuleCase(lambda: [tz.m.Graft(tz.m.Sign(), tz.m.Adam(), ord="linf"), tz.m.Graft(tz.m.Randn(), tz.m.Identity(), tensorwise=False, strength=0.5), tz.m.LR(1e-2)]),
    "ClipModules": ModuleCase(lambda: [tz.m.ClipModules(tz.m.Mul(2), -1, tz.m.Fill(0.5)), tz.m.LR(1e-2)]),
    "DivModules": ModuleCase(lambda: [tz.m.DivModules(tz.m.Adam(), [tz.m.Abs(), tz.m.Add(1)]), tz.m.DivModules(1.0, [tz.m.Abs(), tz.m.Add(1.0)], other_first=True), tz.m.LR(1e-2)]),
    "LerpModules": ModuleCase(lambda: [tz.m.LerpModules(tz.m.Adam(), tz.m.Sign(), 0.3), tz.m.LR(1e-2)]),
    "PowModules": ModuleCase(lambda: [tz.m.PowModules(tz.m.Abs(), tz.m.Fill(0.5)), tz.m.PowModules(0.5, tz.m.Sign()), tz.m.LR(1e-2)]),
    "SubModules": ModuleCase(lambda: [tz.m.SubModules(tz.m.Mul(2), tz.m.Sign(), alpha=0.5), tz.m.SubModules(1.0, tz.m.Identity()), tz.m.LR(1e-2)]),
    "Sum": ModuleCase(lambda: [tz.m.Sum(tz.m.Adam(), 0.1, tz.m.Sign()), tz.m.LR(1e-2)]),
    "Mean": ModuleCase(lambda: [tz.m.Mean(tz.m.Adam(), 0.1, tz.m.Sign()), tz.m.LR(1e-2)]),
    "Prod": ModuleCase(lambda: [tz.m.Prod(tz.m.Identity(), 0.5, tz.m.Abs()), tz.m.LR(1e-2)]),
    "MaximumModules": ModuleCase(lambda: [tz.m.MaximumModules(tz.m.Identity(), -0.1, tz.m.Sign()), tz.m.LR(1e-2)]),
    "MinimumModules": ModuleCase(lambda: [tz.m.MinimumModules(tz.m.Identity(), 0.1, tz.m.Sign()), tz.m.LR(1e-2)]),
    "WeightedSum": ModuleCase(lambda: [tz.m.WeightedSum(tz.m.Adam(), 0.1, tz.m.Sign(), weights=[1.0, 2.0, 0.5]), tz.m.LR(1e-2)]),
    "WeightedMean": ModuleCase(lambda: [tz.m.WeightedMean(tz.m.Adam(), 0.1, tz.m.Sign(), weights=[1.0, 2.0, 0.5]), tz.m.LR(1e-2)]),
    "Sqrt": ModuleCase(lambda: [tz.m.Abs(), tz.m.Sqrt(), tz.m.LR(1e-2)]),
    "Reciprocal": ModuleCase(lambda: [tz.m.Exp(), tz.m.Reciprocal(eps=0.5), tz.m.LR(1e-2)]),
    "NanToNum": ModuleCase(lambda: [tz.m.NanToNum(nan=0.0, posinf=1.0, neginf=-1.0), tz.m.LR(1e-2)]),
    "CustomUnaryOperation": ModuleCase(lambda: [tz.m.CustomUnaryOperation("tanh"), tz.m.CustomUnaryOperation("abs_"), tz.m.LR(1e-2)]),
    # the callables are registered below (unregistered ones cannot travel in a spec: SpecError, tests/modules/test_ops.py)
    "UnaryLambda": ModuleCase(lambda: [tz.m.UnaryLambda(_ops_halve_all), tz.m.LR(1e-2)]),
    "UnaryParameterwiseLambda": ModuleCase(lambda: [tz.m.UnaryParameterwiseLambda(_ops_tanh), tz.m.LR(1e-2)]),
    "Fill": ModuleCase(lambda: [tz.m.Fill(0.5), tz.m.LR(1e-2)]),
    "Uniform": ModuleCase(lambda: [tz.m.Uniform(-1.0, 2.0), tz.m.LR(1e-2)]),
    "RandomSample": ModuleCase(lambda: [tz.m.RandomSample("sphere", variance=2.0), tz.m.LR(1e-2)]),
    "Zeros": ModuleCase(lambda: [tz.m.Zeros(), tz.m.LR(1e-2)], skip={"no_progress": "outputs zeros: the parameters do not move by design"}),
    "GradToNone": ModuleCase(lambda: [tz.m.GradToNone(), tz.m.Grad(), tz.m.LR(1e-2)], needs_closure=True),
    "Debias": ModuleCase(lambda: [tz.m.Debias(beta1=0.9, beta2=0.999, alpha=0.5), tz.m.LR(1e-2)]),
    "CenteredSqrtEMASquared": ModuleCase(lambda: [tz.m.CenteredSqrtEMASquared(amsgrad=True, debiased=True), tz.m.LR(1e-2)]),
    "SqrtEMASquared": ModuleCase(lambda: [tz.m.SqrtEMASquared(amsgrad=True, debiased=True), tz.m.LR(1e-2)]),
    "AccumulateMean": ModuleCase(lambda: [tz.m.AccumulateMean(decay=0.1), tz.m.LR(1e-2)]),
    # -- momentum / clipping / weight_decay / smoothing (issue 7) --
    "EMA": ModuleCase(lambda: [tz.m.EMA(0.8, dampening=0.1, debias=True), tz.m.LR(1e-2)]),
    "HeavyBall": ModuleCase(lambda: [tz.m.HeavyBall(0.9), tz.m.LR(1e-2)]),
    "NAG": ModuleCase(lambda: [tz.m.NAG(0.9, dampening=0.1), tz.m.LR(1e-2)]),
    "Averaging": ModuleCase(lambda: [tz.m.Averaging(3), tz.m.LR(1e-2)]),
    "MedianAveraging": ModuleCase(lambda: [tz.m.MedianAveraging(4), tz.m.LR(1e-2)]),
    "WeightedAveraging": ModuleCase(lambda: [tz.m.WeightedAveraging([0.5, 1.0, 2.0]), tz.m.LR(1e-2)]),
    "Cautious": ModuleCase(lambda: [tz.m.HeavyBall(), tz.m.Cautious(normalize=True), tz.m.LR(1e-2)]),
    "UpdateGradientSignConsistency": ModuleCase(lambda: [tz.m.HeavyBall(), tz.m.UpdateGradientSignConsistency(normalize=True), tz.m.LR(1e-2)]),
    "ScaleByGradCosineSimilarity": ModuleCase(lambda: [tz.m.HeavyBall(), tz.m.ScaleByGradCosineSimilarity(), tz.m.LR(1e-2)]),
    "IntermoduleCautious": ModuleCase(lambda: [tz.m.IntermoduleCautious(tz.m.HeavyBall(), tz.m.EMA(0.5), mode="grad"), tz.m.LR(1e-2)]),
    "ScaleModulesByCosineSimilarity": ModuleCase(lambda: [tz.m.ScaleModulesByCosineSimilarity(tz.m.HeavyBall(), tz.m.EMA(0.5)), tz.m.LR(1e-2)]),
    "ClipValue": ModuleCase(lambda: [tz.m.ClipValue(0.5), tz.m.LR(1e-2)]),
    "ClipNorm": ModuleCase(lambda: [tz.m.ClipNorm(1.0, dim=0), tz.m.ClipNorm(2.0, dim="global"), tz.m.LR(1e-2)]),
    "Normalize": ModuleCase(lambda: [tz.m.Normalize(2.0, ord="mad", dim=-1, inverse_dims=True), tz.m.LR(1e-2)]),
    "Centralize": ModuleCase(lambda: [tz.m.Centralize(dim=0, inverse_dims=True, min_size=1), tz.m.LR(1e-2)]),
    "ClipNormByEMA": ModuleCase(lambda: [tz.m.ClipNormByEMA(0.5, max_ema_growth=1.2), tz.m.LR(1e-2)]),
    "NormalizeByEMA": ModuleCase(lambda: [tz.m.NormalizeByEMA(0.5, tensorwise=False), tz.m.LR(1e-2)]),
    "ClipValueByEMA": ModuleCase(lambda: [tz.m.ClipValueByEMA(0.5, init=1.0, exp_avg_tfm=tz.m.HeavyBall(0.5)), tz.m.LR(1e-2)]),
    "ClipNormGrowth": ModuleCase(lambda: [tz.m.ClipNormGrowth(add=0.5, mul=1.2), tz.m.LR(1e-2)]),
    "ClipValueGrowth": ModuleCase(lambda: [tz.m.ClipValueGrowth(mul=1.2), tz.m.LR(1e-2)]),
    "WeightDecay": ModuleCase(lambda: [tz.m.WeightDecay(0.1), tz.m.LR(1e-2)]),
    "CautiousWeightDecay": ModuleCase(lambda: [tz.m.HeavyBall(), tz.m.CautiousWeightDecay(0.1), tz.m.LR(1e-2)]),
    # the gradient is computed (by HeavyBall) before the parameters are decayed, with or without a closure
    "DirectWeightDecay": ModuleCase(lambda: [tz.m.HeavyBall(), tz.m.DirectWeightDecay(0.1), tz.m.LR(1e-2)]),
    "RelativeWeightDecay": ModuleCase(lambda: [tz.m.HeavyBall(), tz.m.RelativeWeightDecay(norm_input="grad", cautious=True), tz.m.LR(1e-2)]),
    "LaplacianSmoothing": ModuleCase(lambda: [tz.m.LaplacianSmoothing(sigma=0.5, min_numel=2), tz.m.LR(1e-2)]),
    # -- second_order / least_squares (Hessians through autograd: the closure must not call backward itself) --
    "Newton": ModuleCase(lambda: [tz.m.Newton(damping=0.1), tz.m.LR(0.5)], needs_closure=True, skip=_SO_SKIP),
    "InverseFreeNewton": ModuleCase(lambda: [tz.m.InverseFreeNewton(update_freq=2), tz.m.LR(0.5)], needs_closure=True, skip=_SO_SKIP),
    "TwoPointNewton": ModuleCase(lambda: [tz.m.TwoPointNewton(), tz.m.LR(0.5)], needs_closure=True, skip=_SO_SKIP),
    "SixthOrder3P": ModuleCase(lambda: [tz.m.SixthOrder3P(), tz.m.LR(0.5)], needs_closure=True, skip=_SO_SKIP),
    "SixthOrder3PM2": ModuleCase(lambda: [tz.m.SixthOrder3PM2(derivatives_method="autograd"), tz.m.LR(0.5)], needs_closure=True, skip=_SO_SKIP),
    # -- second_order: SixthOrder5P, ImprovedNewton --
    "SixthOrder5P": ModuleCase(lambda: [tz.m.SixthOrder5P(), tz.m.LR(0.5)], needs_closure=True, skip=_SO_SKIP),
    "ImprovedNewton": ModuleCase(lambda: [tz.m.ImprovedNewton(damping=0.1), tz.m.LR(0.5)], needs_closure=True, skip=_SO_SKIP),
    "GaussNewton": ModuleCase(lambda: [tz.m.GaussNewton(reg=1.0, update_freq=2), tz.m.LR(0.1)], needs_closure=True, skip=_SO_SKIP),
    "SumOfSquares": ModuleCase(lambda: [tz.m.SumOfSquares(), tz.m.LR(1e-4)], needs_closure=True, skip=_SO_SKIP),
    # -- second_order: Hessian-free Newton (p_ncg) --
    "NewtonCG": ModuleCase(lambda: [tz.m.NewtonCG(maxiter=3, reg=0.1, warm_start=True), tz.m.LR(0.5)], needs_closure=True, skip=_SO_SKIP),
    "NewtonCGSteihaug": ModuleCase(lambda: [tz.m.NewtonCGSteihaug(maxiter=3, hvp_method="fd_forward", init=0.1)], needs_closure=True),
    # -- second_order: sketched Newton (p_last2) --
    "SubspaceNewton": ModuleCase(lambda: [tz.m.SubspaceNewton(sketch_size=2, damping=0.1), tz.m.LR(0.5)], needs_closure=True, skip=_SO_SKIP),
    "NystromSketchAndSolve": ModuleCase(lambda: [tz.m.NystromSketchAndSolve(rank=3, reg=1.0, seed=0), tz.m.LR(0.1)], needs_closure=True, skip=_SO_SKIP),
    "NystromPCG": ModuleCase(lambda: [tz.m.NystromPCG(rank=3, reg=1.0, maxiter=4, seed=0), tz.m.LR(0.1)], needs_closure=True, skip=_SO_SKIP),
    # -- line searches, L-BFGS / L-SR1, conjugate gradient, restarts (issue 8) --
    "Backtracking": ModuleCase(lambda: [tz.m.LBFGS(), tz.m.Backtracking()], needs_closure=True),
    "AdaptiveBacktracking": ModuleCase(lambda: [tz.m.AdaptiveBacktracking(init=0.1, nplus=3.0)], needs_closure=True, steps=5),
    "StrongWolfe": ModuleCase(lambda: [tz.m.LBFGS(history_size=3), tz.m.StrongWolfe()], needs_closure=True),
    "ScipyMinimizeScalar": ModuleCase(lambda: [tz.m.ScipyMinimizeScalar(maxiter=8)], needs_closure=True),
    "AdaptiveBisection": ModuleCase(lambda: [tz.m.AdaptiveBisection(init=0.01)], needs_closure=True, steps=5),
    "LBFGS": ModuleCase(lambda: [tz.m.LBFGS(history_size=2), tz.m.LR(1e-2)], steps=5),
    "LSR1": ModuleCase(lambda: [tz.m.LSR1(history_size=2, scale_first=True), tz.m.LR(1e-2)], steps=5),
    # -- restarts, conjugate gradient (issue 8) --
    "RestartEvery": ModuleCase(lambda: [tz.m.RestartEvery(tz.m.Adam(), 2), tz.m.LR(1e-2)], steps=5),
    "RestartOnStuck": ModuleCase(lambda: [tz.m.RestartOnStuck(tz.m.Adam(), tol=1.0, n_tol=2), tz.m.LR(1e-2)], steps=5),
    "PowellRestart": ModuleCase(lambda: [tz.m.PowellRestart(tz.m.FletcherReeves(), cond1=0.1), tz.m.LR(1e-2)], steps=5),
    "BirginMartinezRestart": ModuleCase(lambda: [tz.m.BirginMartinezRestart(tz.m.HestenesStiefel(), cond=0.5), tz.m.LR(1e-2)], steps=5),
    "PolakRibiere": ModuleCase(lambda: [tz.m.PolakRibiere(clip_beta=False, restart_interval=3), tz.m.LR(1e-2)], steps=5),
    "HagerZhang": ModuleCase(lambda: [tz.m.HagerZhang(inner=tz.m.Mul(0.5)), tz.m.LR(1e-2)], steps=5),
    "ProjectedGradientMethod": ModuleCase(lambda: [tz.m.ProjectedGradientMethod(concat_params=False), tz.m.LR(1e-2)], steps=5),
    # -- matrix_adaptive: matrix preconditioners --
    "Orthogonalize": ModuleCase(lambda: [tz.m.Orthogonalize(adjust_lr=True, dual_norm_correction=True), tz.m.Orthogonalize(method="polar_express", channel_first=False), tz.m.LR(1e-2)]),
    "DualNormCorrection": ModuleCase(lambda: [tz.m.Orthogonalize(method="svd"), tz.m.DualNormCorrection(), tz.m.LR(1e-2)]),
    "MuonAdjustLR": ModuleCase(lambda: [tz.m.Orthogonalize(method="svd", channel_first=False), tz.m.MuonAdjustLR(channel_first=False, alpha=0.5), tz.m.LR(1e-2)]),
    "Shampoo": ModuleCase(lambda: [tz.m.Shampoo(precond_freq=2, beta=0.9, inner=tz.m.EMA(0.9)), tz.m.Shampoo(merge_small=False, max_dim=4), tz.m.LR(1e-2)]),
    # -- matrix_adaptive: SOAP; basis: optimizers run in a rotated basis --
    "SOAP": ModuleCase(lambda: [tz.m.SOAP(precond_freq=2, merge_small=True, max_dim=4, inner=tz.m.EMA(0.5)), tz.m.SOAP(precond_freq=1, shampoo_beta=None, proj_exp_avg=False, precondition_1d=False), tz.m.LR(1e-2)], steps=5),
    "SOAPBasis": ModuleCase(lambda: [tz.m.SOAPBasis([tz.m.MARSCorrection(0.9), tz.m.Adam(0.9, 0.95, amsgrad=True)], precond_freq=2, max_dim=4, inner=tz.m.EMA(0.5)), tz.m.SOAPBasis(tz.m.Lion(), precond_freq=1, shampoo_beta=None, merge_small=False, precondition_1d=False), tz.m.LR(1e-2)], steps=5),
    "GGTBasis": ModuleCase(lambda: [tz.m.GGTBasis([tz.m.MARSCorrection(0.9), tz.m.Adam(0.9, 0.95)], history_size=3, update_freq=2, inner=tz.m.EMA(0.5)), tz.m.GGTBasis(tz.m.FullMatrixAdagrad(reg=1e-6), truncate=2), tz.m.LR(1e-2)], steps=5),
    # -- matrix_adaptive: full-matrix methods --
    "FullMatrixAdagrad": ModuleCase(lambda: [tz.m.FullMatrixAdagrad(precond_freq=2, beta=0.9, reg=1e-6, inner=tz.m.EMA(0.9), accumulator_tfm=tz.m.Mul(2.0)), tz.m.FullMatrixAdagrad(concat_params=False, init="GGT", reg=1e-6), tz.m.LR(1e-2)]),
    # -- curvature: Hutchinson Hessian-diagonal preconditioners (autograd HVPs: see _SO_SKIP) --
    "AdaHessian": ModuleCase(lambda: [tz.m.AdaHessian(seed=0, block_size=2, n_samples=2), tz.m.LR(1e-2)], needs_closure=True, skip=_SO_SKIP),
    "SophiaH": ModuleCase(lambda: [tz.m.SophiaH(update_freq=2, seed=1, debias=True, inner=tz.m.HeavyBall(0.5)), tz.m.LR(1e-2)], needs_closure=True, skip=_SO_SKIP),
    "ESGD": ModuleCase(lambda: [tz.m.ESGD(update_freq=2, seed=2, beta=0.9, distribution="rademacher"), tz.m.LR(1e-2)], needs_closure=True, skip=_SO_SKIP),
    # -- psgd: PSGD preconditioners (global RNG, no seed; Newton variants use autograd HVPs: see _SO_SKIP) --
    "PSGDKronWhiten": ModuleCase(lambda: [tz.m.PSGDKronWhiten(max_skew=2.0, balance_probability=0.5, inner=tz.m.EMA(0.9)), tz.m.LR(1e-2)]),
    "PSGDKronNewton": ModuleCase(lambda: [tz.m.PSGDKronNewton(balance_probability=0.5, update_probability=0.7), tz.m.LR(1e-2)], needs_closure=True, skip=_SO_SKIP),
    "PSGDDenseNewton": ModuleCase(lambda: [tz.m.PSGDDenseNewton(inner=tz.m.EMA(0.9)), tz.m.LR(1e-2)], needs_closure=True, skip=_SO_SKIP),
    "PSGDLRANewton": ModuleCase(lambda: [tz.m.PSGDLRANewton(rank=3), tz.m.LR(1e-2)], needs_closure=True, skip=_SO_SKIP),
    "PSGDLRAWhiten": ModuleCase(lambda: [tz.m.PSGDLRAWhiten(rank=2, concat_params=False), tz.m.LR(1e-2)]),
    # -- adaptive / step_size (issue 7) --
    "Adagrad": ModuleCase(lambda: [tz.m.Adagrad(lr_decay=0.01, initial_accumulator_value=0.1, accumulator_tfm=tz.m.Mul(2.0)), tz.m.LR(1e-2)]),
    "AdagradNorm": ModuleCase(lambda: [tz.m.AdagradNorm(beta=0.9, layerwise=False), tz.m.LR(1e-2)]),
    "Adan": ModuleCase(lambda: [tz.m.Adan(m_tfm=tz.m.Mul(1.0)), tz.m.LR(1e-2)]),
    "AdaptiveHeavyBall": ModuleCase(lambda: [tz.m.AdaptiveHeavyBall(f_star=-1.0)], needs_closure=True),
    "AEGD": ModuleCase(lambda: [tz.m.AEGD(lr=0.05)], needs_closure=True),
    "Lion": ModuleCase(lambda: [tz.m.Lion(), tz.m.LR(1e-2)]),
    "MARSCorrection": ModuleCase(lambda: [tz.m.MARSCorrection(beta=0.9), tz.m.Lion(beta1=0.9), tz.m.LR(1e-2)]),
    "RMSprop": ModuleCase(lambda: [tz.m.RMSprop(centered=True, debias=True, amsgrad=True), tz.m.LR(1e-2)]),
    "Rprop": ModuleCase(lambda: [tz.m.Rprop(alpha=0.1), tz.m.LR(0.1)]),
    "ScaleLRBySignChange": ModuleCase(lambda: [tz.m.ScaleLRBySignChange(use_grad=True, lb=None, ub=None), tz.m.LR(1e-2)]),
    "BacktrackOnSignChange": ModuleCase(lambda: [tz.m.BacktrackOnSignChange(), tz.m.LR(1e-2)]),
    "SignConsistencyMask": ModuleCase(lambda: [tz.m.Mul(tz.m.SignConsistencyMask()), tz.m.LR(1e-2)]),
    "SignConsistencyLRs": ModuleCase(lambda: [tz.m.Mul(tz.m.SignConsistencyLRs()), tz.m.LR(1e-2)]),
    "OrthoGrad": ModuleCase(lambda: [tz.m.OrthoGrad(), tz.m.LR(1e-2)]),
    "Warmup": ModuleCase(lambda: [tz.m.Adam(), tz.m.LR(1e-2), tz.m.Warmup(steps=3, start_lr=0.1)]),
    "WarmupNormClip": ModuleCase(lambda: [tz.m.WarmupNormClip(steps=3, start_norm=0.1), tz.m.LR(1e-2)]),
    "RandomStepSize": ModuleCase(lambda: [tz.m.RandomStepSize(0.5, 1.5, parameterwise=True, seed=1), tz.m.LR(1e-2)]),
    "PolyakStepSize": ModuleCase(lambda: [tz.m.PolyakStepSize(f_star=None, max=1.0), tz.m.LR(0.5)], needs_closure=True),
    "BarzilaiBorwein": ModuleCase(lambda: [tz.m.BarzilaiBorwein(alpha_0=1e-2)]),
    "BBStab": ModuleCase(lambda: [tz.m.BBStab(alpha_0=1e-2, inf_iters=1)], steps=5),
    "AdGD": ModuleCase(lambda: [tz.m.AdGD(alpha_0=1e-2)]),
    "BoldDriver": ModuleCase(lambda: [tz.m.BoldDriver(a_init=1e-2)], needs_closure=True),
    # -- trust_region: trust regions around quasi-Newton Hessian approximations (trial steps need the closure) --
    "LevenbergMarquardt": ModuleCase(lambda: [tz.m.LevenbergMarquardt(tz.m.BFGS(inverse=False), y=0.3)], needs_closure=True),
    "Dogleg": ModuleCase(lambda: [tz.m.Dogleg(tz.m.SR1(inverse=False), init=0.5)], needs_closure=True),
    "TrustCG": ModuleCase(lambda: [tz.m.TrustCG(tz.m.BFGS(inverse=False, concat_params=False))], needs_closure=True),
    "CubicRegularization": ModuleCase(lambda: [tz.m.CubicRegularization(tz.m.BFGS(inverse=False), check_decrease=True)], needs_closure=True),
    # -- matrix_adaptive (more): matrix momentum, natural gradient (autograd HVPs / per-sample jacobians: see _SO_SKIP) --
    "MatrixMomentum": ModuleCase(lambda: [tz.m.MatrixMomentum(lr=1e-2, mu=1e-2)], needs_closure=True, skip=_SO_SKIP),
    "NaturalGradient": ModuleCase(lambda: [tz.m.NaturalGradient(reg=1e-2), tz.m.LR(1e-2)], needs_closure=True, skip=_SO_SKIP),
}

ABSTRACT: dict[str, str] = {
    "ProjectionBase": "abstract base of the projections (issue 6)",
    "HessianUpdateStrategy": "abstract base of the quasi-Newton methods (issue 8)",
    "TerminationCriteriaBase": "abstract base of the termination criteria (issue 6)",
    "BinaryOperationBase": "abstract base of the binary ops (issue 6)",
    "MultiOperationBase": "abstract base of the multi-operand ops (issue 6)",
    "ReduceOperationBase": "abstract base of the reductions (issue 6)",
    "GradApproximator": "abstract base of the gradient approximators (issue 3)",
    "HomotopyBase": "abstract base of the homotopies (issue 3)",
    "HigherOrderMethodBase": "abstract base of the multipoint Newton methods (second_order)",
    "LineSearchBase": "abstract base of the line searches (issue 8)",
    "RestartStrategyBase": "abstract base of the restart strategies (issue 8)",
    "ConjugateGradientBase": "abstract base of the conjugate gradient methods (issue 8)",
    "LimitedMemoryBase": "abstract base of L-BFGS / L-SR1 (issue 8)",
    "TrustRegionBase": "abstract base of the trust regions (trust_region)",
}


# -- ops (issue 6): named callables for UnaryLambda / UnaryParameterwiseLambda, registered so that
# the spec round trip of the invariance matrix can carry them.
def _ops_halve_all(tensors):
    return [t.mul_(0.5) for t in tensors]


def _ops_tanh(tensor):
    return tensor.tanh()


tz.register_callable(_ops_halve_all, "tests.module_cases.ops_halve_all")
tz.register_callable(_ops_tanh, "tests.module_cases.ops_tanh")


# -- misc (issue 6): the Split filter of the invariance case, registered for the spec round trip.
def _misc_is_matrix(p):
    return p.ndim >= 2


tz.register_callable(_misc_is_matrix, "tests.module_cases.misc_is_matrix")
