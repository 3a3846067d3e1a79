"""iCEM (Pinneri et al. 2020): CEM with colored noise, a shrinking population and elite reuse."""

import math
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
from mbrl_ros.settings import is_number


class ICEM(Optimizer):
    """The improved cross-entropy method: fewer samples than CEM for plans of the same quality.

    Differences from :class:`~mbrl_ros.planning.cem.CEM`:

    - samples are colored noise along time (power spectrum ``1 / f**noise_exponent``), clipped to the bounds;
    - iteration i draws ``max(population / population_decay**i, 2 * elites)`` samples;
    - the best ``keep_elites`` fraction of the elites joins the next iteration, and the last plan's elites,
      shifted with the receding horizon, join the first iteration of the next plan;
    - the last iteration also evaluates the mean itself;
    - the result is the best sequence seen (or the final mean with ``return_mean=True``).

    Args:
        lower_bound: (A,) lowest action per dimension.
        upper_bound: (A,) highest action per dimension.
        population: samples of the first iteration.
        elites: elite count (int) or ratio of the first population (float in (0, 1], rounded up).
        iterations: sampling-refitting rounds per plan.
        alpha: smoothing in [0, 1) of mean and standard deviation (weight of the previous ones).
        noise_exponent: colored-noise exponent (0 white, 2 red; the paper uses 2-4 for most tasks).
        population_decay: factor >= 1 by which the population shrinks each iteration.
        keep_elites: fraction in [0, 1] of the elites carried to the next iteration and the next plan.
        initial_std: standard deviation of the first iteration, in units of the action range.
        return_mean: return the final mean instead of the best sequence seen.
    """

    name = "icem"

    def __init__(
        self,
        lower_bound: Sequence[float] | Tensor,
        upper_bound: Sequence[float] | Tensor,
        population: int = 100,
        elites: int | float = 10,
        iterations: int = 3,
        alpha: float = 0.1,
        noise_exponent: float = 2.0,
        population_decay: float = 1.25,
        keep_elites: float = 0.3,
        initial_std: float = 0.25,
        return_mean: bool = False,
    ):
        super().__init__(lower_bound, upper_bound)
        self.population = check_positive_int("population", population)
        self.elites = elite_count(elites, population)
        self.iterations = check_positive_int("iterations", iterations)
        self.alpha = check_fraction("alpha", alpha, allow_zero=True, allow_one=False)
        if not is_number(noise_exponent) or noise_exponent < 0:
            raise ValueError(f"noise_exponent must be a number >= 0, got {noise_exponent!r}")
        self.noise_exponent = float(noise_exponent)
        if not is_number(population_decay) or population_decay < 1:
            raise ValueError(f"population_decay must be a number >= 1, got {population_decay!r}")
        self.population_decay = float(population_decay)
        self.kept = math.ceil(check_fraction("keep_elites", keep_elites, allow_zero=True) * self.elites)
        self.initial_std = check_fraction("initial_std", initial_std)
        self.return_mean = bool(return_mean)
        self._previous_elites: Tensor | None = None  # (B, kept, H, A), best first
        self._pending_shift = 0

    def population_size(self, iteration: int) -> int:
        """Samples drawn in ``iteration`` (0-based), before kept elites and the mean are added."""
        return max(round(self.population / self.population_decay**iteration), 2 * self.elites)

    def reset(self) -> None:
        self._previous_elites, self._pending_shift = None, 0

    def shift(self, steps: int) -> None:
        self._pending_shift += steps

    def sample_population(self, mean: Tensor, std: Tensor, generators: Generators, size: int) -> Tensor:
        """(B, size, H, A) colored-noise samples around ``mean`` (B, H, A), clipped to the bounds."""
        lower, upper = self.bounds(mean)
        noise = sampling.colored_noise(generators, (size, *mean.shape[1:]), self.noise_exponent, mean.device,
                                       mean.dtype)
        return (mean.unsqueeze(1) + std.unsqueeze(1) * noise).clamp_(lower, upper)

    def _shifted_elites(self, mean: Tensor, std: Tensor, generators: Generators) -> Tensor | None:
        """Last plan's kept elites moved with the horizon, their new last steps drawn around ``mean``."""
        elites, steps = self._previous_elites, self._pending_shift
        self._previous_elites, self._pending_shift = None, 0
        if elites is None or elites.shape[0] != mean.shape[0] or elites.shape[2:] != mean.shape[1:]:
            return None
        horizon = mean.shape[1]
        if steps >= horizon or elites.shape[1] == 0:
            return None
        if steps == 0:
            return elites
        lower, upper = self.bounds(mean)
        fresh = sampling.normal(generators, (elites.shape[1], steps, mean.shape[2]), mean.device, mean.dtype)
        tail = (mean[:, None, -steps:] + std[:, None, -steps:] * fresh).clamp_(lower, upper)
        return torch.cat([elites[:, :, steps:], tail], dim=2)

    def _optimize(self, objective: Objective, mean: Tensor, generators: Generators, deadline: float | None) -> Tensor:
        lower, upper = self.bounds(mean)
        std = ((upper - lower) * self.initial_std).expand_as(mean).clone()
        carried = self._shifted_elites(mean, std, generators)
        best_return = torch.full(mean.shape[:1], -math.inf, device=mean.device, dtype=mean.dtype)
        best = mean.clone()
        evaluations = 0
        iteration = 0
        while iteration < self.iterations:
            last = iteration == self.iterations - 1 or self._out_of_time(deadline)
            parts = [self.sample_population(mean, std, generators, self.population_size(iteration))]
            if carried is not None:
                parts.append(carried)
            if last:
                parts.append(mean.unsqueeze(1))
            population = torch.cat(parts, dim=1)
            returns = objective(population)
            evaluations += population.shape[1]
            top_returns, top = returns.topk(min(self.elites, population.shape[1]), dim=1)
            elites = gather_sequences(population, top)
            improved = top_returns[:, 0] > best_return
            best = torch.where(improved[:, None, None], elites[:, 0], best)
            best_return = torch.maximum(best_return, top_returns[:, 0])
            new_std, new_mean = torch.std_mean(elites, dim=1, correction=0)
            mean = self.alpha * mean + (1.0 - self.alpha) * new_mean
            std = self.alpha * std + (1.0 - self.alpha) * new_std
            carried = elites[:, : self.kept]
            iteration += 1
            if last:
                break
        self._previous_elites = carried
        self.last_stats = OptimizerStats(iterations=iteration, evaluations=evaluations, best_return=best_return)
        return mean if self.return_mean else best
