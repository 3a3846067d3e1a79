"""The optimizer interface shared by all planners: maximise an objective over action sequences.

``optimize(objective, initial_mean) -> best_mean`` with the objective mapping action sequences (N, H, A) to
returns (N,) and ``initial_mean`` of shape (H, A) (the split of mbrl-lib). Every optimizer also solves B
independent problems at once: ``initial_mean`` (B, H, A), the objective mapping (B, N, H, A) to (B, N), and
problem b drawing its random numbers from its own generator b only (see :mod:`mbrl_ros.planning.sampling`).
"""

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from mbrl_ros.planning.sampling import Generators, as_generators
from mbrl_ros.settings import is_integer, is_number

Objective = Callable[[Tensor], Tensor]


@dataclass
class OptimizerStats:
    """What the last :meth:`Optimizer.optimize` call did.

    Attributes:
        iterations: iterations run (fewer than configured when a deadline stopped it).
        evaluations: action sequences evaluated per problem, all iterations together.
        best_return: (B,) highest objective value seen per problem.
    """

    iterations: int
    evaluations: int
    best_return: Tensor


def check_positive_int(name: str, value: int) -> int:
    if not is_integer(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_fraction(name: str, value: float, *, allow_zero: bool = False, allow_one: bool = True) -> float:
    low_ok = is_number(value) and (value >= 0.0 if allow_zero else value > 0.0)
    if not (low_ok and (value <= 1.0 if allow_one else value < 1.0)):
        interval = ("[" if allow_zero else "(") + "0, 1" + ("]" if allow_one else ")")
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def elite_count(elites: int | float, population: int) -> int:
    """Number of elites from a count (int) or a ratio of the population (float in (0, 1], rounded up)."""
    if isinstance(elites, bool):
        raise ValueError(f"elites must be a count or a ratio, got {elites!r}")
    if isinstance(elites, int):
        count = elites
    elif isinstance(elites, float) and 0.0 < elites <= 1.0:
        count = math.ceil(elites * population)
    else:
        raise ValueError(f"elites must be a positive count or a ratio in (0, 1], got {elites!r}")
    if not 1 <= count <= population:
        raise ValueError(f"the elite count must be in [1, population={population}], got {count}")
    return count


def gather_sequences(population: Tensor, indices: Tensor) -> Tensor:
    """Picks sequences per problem: population (B, N, H, A), indices (B, K) -> (B, K, H, A)."""
    _, _, horizon, actions = population.shape
    return population.gather(1, indices[:, :, None, None].expand(-1, -1, horizon, actions))


class Optimizer(ABC):
    """Maximises an objective over action sequences within per-dimension action bounds.

    Subclasses implement :meth:`_optimize` on the batched form; they may keep samples between calls
    (iCEM's elites), in which case :meth:`shift` and :meth:`reset` keep those in step with the receding
    horizon.

    Args:
        lower_bound: (A,) lowest action per dimension.
        upper_bound: (A,) highest action per dimension.
    """

    name: ClassVar[str]

    def __init__(self, lower_bound: Sequence[float] | Tensor, upper_bound: Sequence[float] | Tensor):
        lower = torch.as_tensor(lower_bound, dtype=torch.float32).detach().clone()
        upper = torch.as_tensor(upper_bound, dtype=torch.float32).detach().clone()
        if lower.ndim != 1 or lower.shape != upper.shape or lower.numel() == 0:
            raise ValueError(
                f"action bounds must be two vectors (A,) of equal length, got {tuple(lower.shape)} and "
                f"{tuple(upper.shape)}"
            )
        if not (torch.isfinite(lower).all() and torch.isfinite(upper).all() and (lower < upper).all()):
            raise ValueError(f"action bounds must be finite with lower < upper, got {lower.tolist()}, {upper.tolist()}")
        self.lower_bound, self.upper_bound = lower, upper
        self.last_stats: OptimizerStats | None = None

    @property
    def action_dim(self) -> int:
        return self.lower_bound.shape[0]

    def bounds(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """The bounds (A,) on the device and in the dtype of ``like``."""
        return (self.lower_bound.to(like.device, like.dtype), self.upper_bound.to(like.device, like.dtype))

    def default_mean(self, horizon: int, device: torch.device | str = "cpu") -> Tensor:
        """(H, A): the middle of the action bounds at every step, the mean a plan starts from."""
        middle = (self.lower_bound + self.upper_bound) / 2.0
        return middle.to(device).expand(horizon, -1).clone()

    def reset(self) -> None:
        """Forgets whatever the optimizer kept from earlier calls (a new episode begins)."""
        return  # the base optimizers keep nothing between calls

    def shift(self, steps: int) -> None:
        """The receding horizon moved ``steps`` steps forward since the last :meth:`optimize` call."""
        del steps  # the base optimizers keep nothing between calls

    def optimize(
        self,
        objective: Objective,
        initial_mean: Tensor,
        generators: torch.Generator | Generators | None = None,
        deadline: float | None = None,
    ) -> Tensor:
        """Finds action sequences of high objective value.

        Args:
            objective: maps action sequences (N, H, A) to returns (N,); for a batch of problems,
                (B, N, H, A) to (B, N). Higher is better.
            initial_mean: (H, A), or (B, H, A) for B problems: where the search starts (a warm start).
            generators: one ``torch.Generator`` per problem (a single one for an unbatched call); None uses
                torch's global generator.
            deadline: ``time.monotonic()`` value after which no new iteration starts (at least one always
                runs): the anytime mode of a real-time controller.

        Returns:
            (H, A), or (B, H, A): the optimized action sequence(s), within the bounds.
        """
        batched = initial_mean.ndim == 3
        if initial_mean.ndim not in (2, 3) or initial_mean.shape[-1] != self.action_dim:
            raise ValueError(
                f"initial_mean must be (H, {self.action_dim}) or (B, H, {self.action_dim}), "
                f"got {tuple(initial_mean.shape)}"
            )
        mean = initial_mean if batched else initial_mean.unsqueeze(0)
        if not torch.isfinite(mean).all():
            raise ValueError("initial_mean has non-finite entries")
        lower, upper = self.bounds(mean)
        mean = torch.maximum(torch.minimum(mean, upper), lower)

        def batched_objective(population: Tensor) -> Tensor:
            returns = objective(population) if batched else objective(population[0]).unsqueeze(0)
            if returns.shape != population.shape[:2]:
                raise ValueError(
                    f"the objective returned shape {tuple(returns.shape)} for sequences "
                    f"{tuple(population.shape if batched else population.shape[1:])}; expected "
                    f"{tuple(population.shape[:2] if batched else population.shape[1:2])}"
                )
            return torch.nan_to_num(returns, nan=-math.inf)

        result = self._optimize(batched_objective, mean, as_generators(generators, mean.shape[0]), deadline)
        return result if batched else result[0]

    @abstractmethod
    def _optimize(self, objective: Objective, mean: Tensor, generators: Generators, deadline: float | None) -> Tensor:
        """The batched optimisation: mean (B, H, A) within the bounds -> (B, H, A); sets ``last_stats``."""

    @staticmethod
    def _out_of_time(deadline: float | None) -> bool:
        return deadline is not None and time.monotonic() >= deadline
