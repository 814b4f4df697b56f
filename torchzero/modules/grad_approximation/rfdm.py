"""Randomized finite differences: SPSA, RDSA, Gaussian smoothing, MeZO."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch

from ...core.directions import check_distribution, make_direction
from ...core.evaluation import Perturbation, Point
from ...core.objective import Objective
from .base import GradApproximator, Target, check_seed, draw_seeds
from .fdm import Formula
from .formulas import get_stencil

Distribution = Literal["normal", "gaussian", "uniform", "sphere", "rademacher"]


class _RandomizedEstimator(GradApproximator):
    """Shared machinery: random directions drawn as seeds, one batch per estimate.

    With directions ``d_1..d_n`` (zero mean, ``E[d d^T] = I``) and the stencil of ``formula``::

        c_i = sum_k w_k f(x + o_k h d_i) / h      (directional derivative along d_i)
        g   = (1/n) sum_i c_i d_i
    """

    def __init__(self, defaults: dict[str, Any], pre_generate: bool, return_approx_loss: bool, seed: Any, target: Target):
        get_stencil(defaults["formula"])
        check_distribution(defaults["distribution"])
        if defaults["h"] <= 0:
            raise ValueError(f"h must be positive, got {defaults['h']}")
        if int(defaults["n_samples"]) < 1:
            raise ValueError(f"n_samples must be >= 1, got {defaults['n_samples']}")
        super().__init__(defaults, return_approx_loss=return_approx_loss, target=target)
        self._pre_generate = bool(pre_generate)
        self._seed = check_seed(seed)

    # seeds ------------------------------------------------------------------------
    def _n_samples(self, params: Sequence[torch.Tensor]) -> int:
        return int(self.settings[params[0]]["n_samples"])

    def pre_step(self, objective: Objective) -> None:
        if self._pre_generate:
            self.global_state["seeds"] = draw_seeds(self, self._n_samples(objective.params), self._seed)

    def step_seeds(self, params: Sequence[torch.Tensor]) -> list[int]:
        """The seeds of this estimate: the step's pre-generated ones, or fresh ones."""
        seeds = self.global_state.get("seeds") if self._pre_generate else None
        if seeds is None:
            seeds = draw_seeds(self, self._n_samples(params), self._seed)
        return list(seeds)

    # estimate ---------------------------------------------------------------------
    def approximate(self, closure: Callable, params: list[torch.Tensor], loss: Any):
        return self.approximate_at(closure, params, loss, want_loss=False)

    def directional_derivatives(self, closure: Callable, params: list[torch.Tensor], base: list[torch.Tensor],
                                seeds: list[int], distribution: str, hs: list[float], formula: str,
                                loss: Any, want_loss: bool, directions: dict | None = None) -> tuple[list[float], Any, Any]:
        """``c_i`` (not yet divided by ``h``) for each seed, the loss at ``x`` and a nearby loss."""
        offsets, weights = get_stencil(formula)
        uniform_h = all(h == hs[0] for h in hs)
        need_f0 = loss is None and (want_loss or 0 in offsets)
        points: list[Point] = [base] if need_f0 else []
        nonzero = [(o, w) for o, w in zip(offsets, weights) if o != 0]
        for s in seeds:
            for o, _w in nonzero:
                scale = o * hs[0] if uniform_h else [o * h for h in hs]
                points.append(Perturbation(base, s, scale, distribution, cache=directions))
        values = self.evaluate(closure, params, points, directions)
        if need_f0:
            loss = values[0]
            values = values[1:]
        w0 = sum(w for o, w in zip(offsets, weights) if o == 0)
        m = len(nonzero)
        cs = []
        for i in range(len(seeds)):
            c = sum(w * float(values[i * m + j]) for j, (_o, w) in enumerate(nonzero))
            if w0 != 0:
                c += w0 * float(loss)
            cs.append(c)
        loss_approx = values[0] if values else loss
        return cs, loss, loss_approx

    def combine(self, base: list[torch.Tensor], seeds: list[int], cs: list[float], distribution: str,
                hs: list[float], directions: dict | None = None) -> list[torch.Tensor]:
        """``g_p = (1/n) sum_i c_i d_{i,p} / h_p``, rebuilding each direction from its seed
        (or taking it from ``directions``, filled while the points were evaluated)."""
        n = len(seeds)
        grads = [torch.zeros_like(b) for b in base]
        for s, c in zip(seeds, cs):
            d = directions.get((id(base), s, distribution)) if directions else None
            if d is None:
                d = make_direction(distribution, s, base)
            torch._foreach_add_(grads, d, alpha=c)
        if all(h == hs[0] for h in hs):
            torch._foreach_div_(grads, n * hs[0])
        else:
            torch._foreach_div_(grads, [n * h for h in hs])
        return grads

    def approximate_at(self, closure: Callable, params: list[torch.Tensor], loss: Any, want_loss: bool):
        hs, formulas, distributions = self.settings.values(params, "h", "formula", "distribution")
        seeds = self.step_seeds(params)
        base = [p.detach().clone() for p in params]
        directions: dict = {}
        cs, loss, loss_approx = self.directional_derivatives(closure, params, base, seeds, distributions[0], hs,
                                                             formulas[0], loss, want_loss, directions)
        return self.combine(base, seeds, cs, distributions[0], hs, directions), loss, loss_approx


class RandomizedFDM(_RandomizedEstimator):
    """Gradient estimate from finite differences along random directions.

    With ``n = n_samples`` directions ``d_i`` drawn from ``distribution`` (each with zero mean
    and ``E[d d^T] = I``) and the stencil of ``formula``::

        g = (1/n) sum_i [sum_k w_k f(x + o_k h d_i) / h] d_i

    e.g. ``central``: ``g = (1/n) sum_i (f(x + h d_i) - f(x - h d_i)) / (2h) d_i``. Since
    ``E[(d . grad f) d] = grad f`` the estimate is unbiased up to the stencil's O(h^2) (central) or
    O(h) (forward) error. Each step submits every point (all samples, all offsets) as one batch;
    each point travels as ``(seed, scale)`` and is rebuilt from the seed by the evaluator.

    With ``rademacher`` and ``central`` this is SPSA (Spall, 1992, "Multivariate stochastic
    approximation using a simultaneous perturbation gradient approximation", IEEE TAC 37(3),
    doi:10.1109/9.119632); with ``gaussian`` it is RDSA; with many gaussian samples and a
    one-sided stencil it is Gaussian smoothing. See Chen (2021), "Theoretical study and
    comparison of SPSA and RDSA algorithms", arXiv:2107.12771.

    Args:
        h: finite-difference step (a per-parameter setting).
        n_samples: number of random directions per estimate.
        formula: finite-difference stencil (see :mod:`~torchzero.modules.grad_approximation.formulas`).
        distribution: ``rademacher``, ``gaussian`` / ``normal``, ``uniform`` (unit variance) or
            ``sphere`` (uniform direction, norm ``sqrt(n_params)``).
        pre_generate: draw the directions once per step, so that every estimate within the step
            (a line search calling the closure at several points) uses the same directions;
            otherwise each estimate draws new ones.
        return_approx_loss: report a perturbed loss instead of evaluating ``f(x)`` when the
            stencil does not include it.
        seed: int seed (directions are then a fixed function of the seed and the estimate's
            number), a ``torch.Generator``, or None for the global torch RNG.
        target: ``"closure"``, ``"grad"`` or ``"update"`` (see :class:`GradApproximator`).
    """

    PRE_MULTIPLY_BY_H = True

    def __init__(self, h: float = 1e-3, n_samples: int = 1, formula: Formula = "central",
                 distribution: Distribution = "rademacher", pre_generate: bool = True,
                 return_approx_loss: bool = False, seed: int | None | torch.Generator = None,
                 target: Target = "closure"):
        super().__init__(dict(h=h, n_samples=n_samples, formula=formula, distribution=distribution),
                         pre_generate, return_approx_loss, seed, target)


class SPSA(RandomizedFDM):
    """Simultaneous perturbation stochastic approximation (Spall, 1992).

    ``g = (1/n) sum_i (f(x + h d_i) - f(x - h d_i)) / (2h) d_i`` with Rademacher (+-1) directions:
    two evaluations per sample regardless of the dimension, unbiased up to O(h^2). This is
    :class:`RandomizedFDM` with ``formula="central"`` and ``distribution="rademacher"``.

    References: Spall, J. C. (1992), "Multivariate stochastic approximation using a
    simultaneous perturbation gradient approximation", IEEE TAC 37(3), 332-341,
    doi:10.1109/9.119632; Chen, Y. (2021), arXiv:2107.12771.

    Args: as :class:`RandomizedFDM`.
    """

    def __init__(self, h: float = 1e-3, n_samples: int = 1, formula: Formula = "central",
                 distribution: Distribution = "rademacher", pre_generate: bool = True,
                 return_approx_loss: bool = False, seed: int | None | torch.Generator = None,
                 target: Target = "closure"):
        super().__init__(h=h, n_samples=n_samples, formula=formula, distribution=distribution, pre_generate=pre_generate,
                         return_approx_loss=return_approx_loss, seed=seed, target=target)


class RDSA(RandomizedFDM):
    """Random-direction stochastic approximation.

    ``g = (1/n) sum_i (f(x + h d_i) - f(x - h d_i)) / (2h) d_i`` with standard normal directions
    ``d_i`` (``E[d d^T] = I``, so the estimate is unbiased up to O(h^2)). This is
    :class:`RandomizedFDM` with ``formula="central2"`` and ``distribution="gaussian"``.

    Reference: Chen, Y. (2021), "Theoretical study and comparison of SPSA and RDSA algorithms",
    arXiv:2107.12771.

    Args: as :class:`RandomizedFDM`.
    """

    def __init__(self, h: float = 1e-3, n_samples: int = 1, formula: Formula = "central2",
                 distribution: Distribution = "gaussian", pre_generate: bool = True,
                 return_approx_loss: bool = False, target: Target = "closure",
                 seed: int | None | torch.Generator = None):
        super().__init__(h=h, n_samples=n_samples, formula=formula, distribution=distribution, pre_generate=pre_generate,
                         return_approx_loss=return_approx_loss, seed=seed, target=target)


class GaussianSmoothing(RandomizedFDM):
    """Gradient of the Gaussian smoothing of ``f`` (Nesterov & Spokoiny, 2017).

    The smoothed function ``f_h(x) = E_u[f(x + h u)]``, ``u ~ N(0, I)``, has gradient
    ``E_u[(f(x + h u) - f(x)) / h u]``; it is estimated with ``n_samples`` directions::

        g = (1/n) sum_i (f(x + h u_i) - f(x)) / h u_i

    (``n + 1`` evaluations with the default one-sided stencil). The larger ``h`` smooths more.

    Reference: Nesterov, Y., & Spokoiny, V. (2017), "Random gradient-free minimization of
    convex functions", Foundations of Computational Mathematics 17, 527-566,
    doi:10.1007/s10208-015-9296-2.

    Args: as :class:`RandomizedFDM`.
    """

    def __init__(self, h: float = 1e-2, n_samples: int = 100, formula: Formula = "forward2",
                 distribution: Distribution = "gaussian", pre_generate: bool = True,
                 return_approx_loss: bool = False, target: Target = "closure",
                 seed: int | None | torch.Generator = None):
        super().__init__(h=h, n_samples=n_samples, formula=formula, distribution=distribution, pre_generate=pre_generate,
                         return_approx_loss=return_approx_loss, seed=seed, target=target)


class MeZO(_RandomizedEstimator):
    """Memory-efficient zeroth-order optimizer (MeZO; Malladi et al., 2023).

    The SPSA estimate ``g = (1/n) sum_i (f(x + h z_i) - f(x - h z_i)) / (2h) z_i`` where no
    direction is ever stored: each ``z_i`` is a seed, regenerated whenever it is needed (to
    build the perturbed points and to form the estimate), so memory stays at inference level.
    The directions of a step are kept for every estimate within the step.

    Reference: Malladi, S., Gao, T., Nichani, E., Damian, A., Lee, J. D., Chen, D., & Arora, S.
    (2023), "Fine-tuning language models with just forward passes", NeurIPS 36,
    arXiv:2305.17333.

    Args:
        h: perturbation size.
        n_samples: number of directions per estimate.
        formula: finite-difference stencil.
        distribution: direction distribution (``rademacher`` by default; the paper uses gaussian).
        return_approx_loss: report a perturbed loss instead of evaluating ``f(x)``.
        target: ``"closure"``, ``"grad"`` or ``"update"``.
    """

    def __init__(self, h: float = 1e-3, n_samples: int = 1, formula: Formula = "central2",
                 distribution: Distribution = "rademacher", return_approx_loss: bool = False,
                 target: Target = "closure"):
        super().__init__(dict(h=h, n_samples=n_samples, formula=formula, distribution=distribution),
                         pre_generate=True, return_approx_loss=return_approx_loss, seed=None, target=target)
