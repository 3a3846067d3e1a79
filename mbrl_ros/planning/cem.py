"""The cross-entropy method as in PETS (Chua et al. 2018): truncated-normal sampling inside the bounds."""

from collections.abc import Sequence

import torch
from torch import Tensor

from mbrl_ros.planning import sampling
from mbrl_ros.planning.optimizer import (
    Objective,
    Optimizer,
    OptimizerStats,
    check_fraction,
    check_positive_int,
    elite_count,
    gather_sequences,
)
from mbrl_ros.planning.sampling import Generators


class CEM(Optimizer):
    """Cross-entropy method over action sequences; returns the mean of the final sampling distribution.

    Each iteration draws ``population`` sequences from a diagonal Gaussian restricted to the action bounds;
    the ``elites`` best refit the Gaussian, smoothed with ``alpha``:
    ``mean = alpha * mean + (1 - alpha) * elite_mean`` (likewise the variance). The result is the mean, not
    the single best sample, which overfits the objective's noise.

    Two ways to respect the bounds: ``"truncate"`` samples the Gaussian truncated to the bounds (exactly,
    by inverse CDF); ``"pets"`` shrinks the variance until two standard deviations fit inside the bounds and
    truncates at two standard deviations, as PETS and mbrl-lib do. The latter traps the search at a mean
    close to a bound (a warm start at full throttle can hardly move), so "truncate" is the default.

    Subclasses (POPLIN) override :meth:`initial_variance`, :meth:`sample_population` or :meth:`update`.

    Args:
        lower_bound: (A,) lowest action per dimension.
        upper_bound: (A,) highest action per dimension.
        population: sequences sampled per iteration.
        elites: elite count (int) or ratio of the population (float in (0, 1], rounded up).
        iterations: sampling-refitting rounds per plan.
        alpha: smoothing in [0, 1): the weight of the previous distribution.
        initial_std: standard deviation of the first iteration, in units of the action range
            ``upper - lower`` (PETS: 0.25).
        bound_handling: "truncate" or "pets" (see above).
    """

    name = "cem"

    def __init__(
        self,
        lower_bound: Sequence[float] | Tensor,
        upper_bound: Sequence[float] | Tensor,
        population: int = 350,
        elites: int | float = 0.1,
        iterations: int = 5,
        alpha: float = 0.1,
        initial_std: float = 0.25,
        bound_handling: str = "truncate",
    ):
        super().__init__(lower_bound, upper_bound)
        self.population = check_positive_int("population", population)
        self.elites = elite_count(elites, population)
        self.iterations = check_positive_int("iterations", iterations)
        self.alpha = check_fraction("alpha", alpha, allow_zero=True, allow_one=False)
        self.initial_std = check_fraction("initial_std", initial_std)
        if bound_handling not in ("truncate", "pets"):
            raise ValueError(f"bound_handling must be 'truncate' or 'pets', got {bound_handling!r}")
        self.bound_handling = bound_handling

    def initial_variance(self, mean: Tensor) -> Tensor:
        """(B, H, A) variance of the first iteration for problems with initial ``mean`` (B, H, A)."""
        lower, upper = self.bounds(mean)
        return ((upper - lower) * self.initial_std).square().expand_as(mean).clone()

    def sample_population(self, mean: Tensor, variance: Tensor, generators: Generators) -> Tensor:
        """(B, N, H, A) samples of the bound-respecting truncated normal around ``mean`` (B, H, A)."""
        lower, upper = self.bounds(mean)
        shape = (self.population, *mean.shape[1:])
        if self.bound_handling == "pets":
            room = torch.minimum(mean - lower, upper - mean) / 2.0
            std = torch.minimum(variance, room.square()).sqrt()
            noise = sampling.truncated_normal(generators, shape, mean.device, mean.dtype)
            return (mean.unsqueeze(1) + std.unsqueeze(1) * noise).clamp_(lower, upper)
        std = variance.sqrt().clamp(min=1e-12)
        noise = sampling.truncated_normal_between(generators, shape, ((lower - mean) / std).unsqueeze(1),
                                                  ((upper - mean) / std).unsqueeze(1))
        return (mean.unsqueeze(1) + std.unsqueeze(1) * noise).clamp_(lower, upper)

    def update(self, elites: Tensor, mean: Tensor, variance: Tensor) -> tuple[Tensor, Tensor]:
        """Refits the distribution (B, H, A) to ``elites`` (B, K, H, A), smoothed with ``alpha``."""
        new_variance, new_mean = torch.var_mean(elites, dim=1, correction=0)
        return (self.alpha * mean + (1.0 - self.alpha) * new_mean,
                self.alpha * variance + (1.0 - self.alpha) * new_variance)

    def _optimize(self, objective: Objective, mean: Tensor, generators: Generators, deadline: float | None) -> Tensor:
        variance = self.initial_variance(mean)
        best_return = None
        iteration = 0
        while iteration < self.iterations:
            population = self.sample_population(mean, variance, generators)
            returns = objective(population)
            top_returns, top = returns.topk(self.elites, dim=1)
            mean, variance = self.update(gather_sequences(population, top), mean, variance)
            best_return = top_returns[:, 0] if best_return is None else best_return.maximum(top_returns[:, 0])
            iteration += 1
            if self._out_of_time(deadline):
                break
        self.last_stats = OptimizerStats(iterations=iteration, evaluations=iteration * self.population,
                                         best_return=best_return)
        return mean

