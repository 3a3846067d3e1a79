"""MPPI with temporally filtered noise, as in PDDM (Nagabandi et al. 2019)."""

from collections.abc import Sequence

import torch
from torch import Tensor

from mbrl_ros.planning import sampling
from mbrl_ros.planning.optimizer import Objective, Optimizer, OptimizerStats, check_fraction, check_positive_int
from mbrl_ros.planning.sampling import Generators
from mbrl_ros.settings import is_number


class MPPI(Optimizer):
    """Reward-weighted averaging of smoothly perturbed action sequences (PDDM's planner).

    Each iteration perturbs the mean with noise filtered over time, ``n_t = beta u_t + (1 - beta) n_{t-1}``
    (``u_t ~ N(0, sigma^2)``, ``n_{-1} = 0``), clips the candidates to the bounds, and sets the mean to their
    average weighted by ``exp(gamma (R_k - max R))``. PDDM runs one iteration per control step and shifts the
    mean by one step after each action, resetting the last step: the receding-horizon controller
    (:class:`mbrl_ros.planning.mpc.MPC`) does that shift.

    Args:
        lower_bound: (A,) lowest action per dimension.
        upper_bound: (A,) highest action per dimension.
        population: sequences sampled per iteration.
        iterations: weighted-averaging rounds per plan.
        gamma: reward temperature (1 / return units): higher concentrates the weight on the best sequences.
        beta: noise filter coefficient in (0, 1]; 1 gives white noise, smaller values smoother noise.
        sigma: standard deviation of the unfiltered noise ``u``, in action units: one value or one per
            action dimension (A,).
        relative_sigma: ``sigma`` is in units of half each dimension's range instead, as in PDDM, whose
            actions are normalised to [-1, 1]: every dimension is perturbed alike for its range.
    """

    name = "mppi"

    def __init__(
        self,
        lower_bound: Sequence[float] | Tensor,
        upper_bound: Sequence[float] | Tensor,
        population: int = 1000,
        iterations: int = 1,
        gamma: float = 10.0,
        beta: float = 0.6,
        sigma: float | Sequence[float] = 0.9,
        relative_sigma: bool = False,
    ):
        super().__init__(lower_bound, upper_bound)
        self.population = check_positive_int("population", population)
        self.iterations = check_positive_int("iterations", iterations)
        if not is_number(gamma) or not gamma > 0:
            raise ValueError(f"gamma must be a positive number, got {gamma!r}")
        self.gamma = float(gamma)
        self.beta = check_fraction("beta", beta)
        sigma_tensor = torch.as_tensor(sigma, dtype=torch.float32)
        if sigma_tensor.ndim > 1 or sigma_tensor.numel() not in (1, self.action_dim):
            raise ValueError(f"sigma must be one number or one per action dimension ({self.action_dim}), got {sigma!r}")
        if not (torch.isfinite(sigma_tensor).all() and (sigma_tensor > 0).all()):
            raise ValueError(f"sigma must be positive and finite, got {sigma!r}")
        if not isinstance(relative_sigma, bool):
            raise ValueError(f"relative_sigma must be true or false, got {relative_sigma!r}")
        self.sigma = sigma_tensor.expand(self.action_dim).clone()
        if relative_sigma:
            self.sigma *= (self.upper_bound - self.lower_bound) / 2

    def sample_noise(self, generators: Generators, horizon: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """(B, N, H, A) filtered noise ``n_t = beta u_t + (1 - beta) n_{t-1}`` with ``u_t ~ N(0, sigma^2)``."""
        white = sampling.normal(generators, (self.population, horizon, self.action_dim), device, dtype)
        white = white * self.sigma.to(device, dtype)
        filtered = torch.empty_like(white)
        previous = torch.zeros_like(white[:, :, 0])
        for t in range(horizon):
            previous = self.beta * white[:, :, t] + (1.0 - self.beta) * previous
            filtered[:, :, t] = previous
        return filtered

    def sample_population(self, mean: Tensor, generators: Generators) -> Tensor:
        """(B, N, H, A) candidates: ``mean`` (B, H, A) plus filtered noise, clipped to the bounds."""
        lower, upper = self.bounds(mean)
        noise = self.sample_noise(generators, mean.shape[1], mean.device, mean.dtype)
        return (mean.unsqueeze(1) + noise).clamp_(lower, upper)

    def _optimize(self, objective: Objective, mean: Tensor, generators: Generators, deadline: float | None) -> Tensor:
        best_return = None
        iteration = 0
        while iteration < self.iterations:
            population = self.sample_population(mean, generators)
            returns = objective(population)
            top = returns.max(dim=1, keepdim=True).values
            # exp(gamma (R - max R)); a problem whose candidates all failed (-inf) weighs them equally
            weights = torch.exp(self.gamma * (returns - top)).nan_to_num_(nan=1.0)
            weights = weights / weights.sum(dim=1, keepdim=True)
            mean = torch.einsum("bn,bnha->bha", weights, population)
            best_return = top[:, 0] if best_return is None else best_return.maximum(top[:, 0])
            iteration += 1
            if self._out_of_time(deadline):
                break
        self.last_stats = OptimizerStats(iterations=iteration, evaluations=iteration * self.population,
                                         best_return=best_return)
        return mean
