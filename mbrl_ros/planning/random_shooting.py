"""Random shooting (Nagabandi et al. 2017): the best of K action sequences drawn uniformly within the bounds."""

from collections.abc import Sequence

from torch import Tensor

from mbrl_ros.planning import sampling
from mbrl_ros.planning.optimizer import Objective, Optimizer, OptimizerStats, check_positive_int, gather_sequences
from mbrl_ros.planning.sampling import Generators


class RandomShooting(Optimizer):
    """Evaluates ``population`` uniformly random action sequences once and returns the best one.

    The initial mean is ignored: every candidate is independent of earlier plans.

    Args:
        lower_bound: (A,) lowest action per dimension.
        upper_bound: (A,) highest action per dimension.
        population: K candidate sequences per plan.
    """

    name = "random_shooting"

    def __init__(self, lower_bound: Sequence[float] | Tensor, upper_bound: Sequence[float] | Tensor,
                 population: int = 1000):
        super().__init__(lower_bound, upper_bound)
        self.population = check_positive_int("population", population)

    def sample_population(self, like: Tensor, generators: Generators) -> Tensor:
        """(B, K, H, A) uniform candidates for problems shaped as ``like`` (B, H, A)."""
        batch, horizon, actions = like.shape
        lower, upper = self.bounds(like)
        unit = sampling.uniform(generators, (self.population, horizon, actions), like.device, like.dtype)
        return lower + (upper - lower) * unit

    def _optimize(self, objective: Objective, mean: Tensor, generators: Generators, deadline: float | None) -> Tensor:
        population = self.sample_population(mean, generators)
        returns = objective(population)
        best_return, best = returns.max(dim=1)
        self.last_stats = OptimizerStats(iterations=1, evaluations=self.population, best_return=best_return)
        return gather_sequences(population, best[:, None])[:, 0]
