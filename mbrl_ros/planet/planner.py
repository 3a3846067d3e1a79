"""PlaNet's latent planner: CEM over action sequences, each evaluated by rolling the RSSM in latent space.

All candidates of a CEM iteration go through the RSSM together (batch N), so one plan at the paper's
config (horizon 12, 1000 candidates, 10 iterations, top 100) is 120 batched prior steps, no Python loop
over candidates. Actions are *normalised*: the model and the planner see actions in [-1, 1]^A, which
:func:`scale_actions` maps to a task's actuator range.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mbrl_ros.models.latent import LatentDynamicsModel, LatentFilter, LatentReturn, LatentState
from mbrl_ros.planning.cem import CEM


@dataclass(frozen=True)
class LatentPlannerConfig:
    """CEM settings of the latent planner (defaults: the PlaNet paper's).

    Attributes:
        horizon: planning horizon H (decisions, i.e. action-repeated steps).
        candidates: action sequences N sampled per iteration.
        iterations: CEM refits per plan.
        top: elites K that the sampling distribution is refitted to.
        initial_std: standard deviation of the first iteration, in units of the normalised range 2 (the
            paper's N(0, I) is 0.5).
    """

    horizon: int = 12
    candidates: int = 1000
    iterations: int = 10
    top: int = 100
    initial_std: float = 0.5


PAPER_PLANNER = LatentPlannerConfig()  # horizon 12, 1000 candidates, 10 iterations, top 100


def scale_actions(normalised: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Maps actions (..., A) from [-1, 1] to [lower, upper] (the task's units), clipping outside values."""
    return lower + (np.clip(normalised, -1.0, 1.0) + 1.0) / 2.0 * (upper - lower)


class LatentPlanner:
    """Plans normalised actions (A,) from a latent state with CEM on the model's predicted return.

    Args:
        model: the world model; its ``action_dim`` sets A.
        config: CEM settings.
        generator: random numbers of the optimizer (None: torch's global generator); the RSSM's prior
            samples use torch's global generator.
    """

    def __init__(self, model: LatentDynamicsModel, config: LatentPlannerConfig = PAPER_PLANNER,
                 generator: torch.Generator | None = None):
        self.model, self.config, self.generator = model, config, generator
        ones = torch.ones(model.action_dim)
        self.optimizer = CEM(-ones, ones, population=config.candidates, elites=config.top,
                             iterations=config.iterations, alpha=0.0, initial_std=config.initial_std)

    @torch.no_grad()
    def plan(self, state: LatentState) -> Tensor:
        """The best action sequence (H, A) in [-1, 1] from ``state`` (a batch of one)."""
        device = state.deterministic.device
        initial_mean = self.optimizer.default_mean(self.config.horizon, device)
        return self.optimizer.optimize(LatentReturn(self.model, state), initial_mean, self.generator)

    @property
    def predicted_return(self) -> float:
        """The highest return the model predicted for a candidate during the last plan (nan before any)."""
        stats = self.optimizer.last_stats
        return float("nan") if stats is None else float(stats.best_return[0])


class PlanetAgent:
    """Closes the loop from images: filter the latent state, plan, remember the action for the next filter step.

    Args:
        model: the world model.
        planner: plans from the filtered state (built with the paper's config when None).
        exploration_noise: standard deviation of Gaussian noise added to each planned action (normalised
            units; the paper's 0.3 while collecting data, 0 to evaluate).
        generator: draws the exploration noise.
    """

    def __init__(self, model: LatentDynamicsModel, planner: LatentPlanner | None = None,
                 exploration_noise: float = 0.0, generator: torch.Generator | None = None):
        self.model = model
        self.planner = planner if planner is not None else LatentPlanner(model)
        self.exploration_noise, self.generator = exploration_noise, generator
        self.filter = LatentFilter(model)

    def reset(self) -> None:
        """A new episode begins: forget the latent state and the last action."""
        self.filter.reset()

    @torch.no_grad()
    def act(self, image: Tensor) -> Tensor:
        """The normalised action (A,) in [-1, 1] to apply after ``image`` (3, 64, 64) uint8."""
        state = self.filter.update(image)
        action = self.planner.plan(state)[0]
        if self.exploration_noise > 0:
            noise = torch.randn(action.shape, generator=self.generator, device=action.device)
            action = (action + self.exploration_noise * noise).clamp(-1.0, 1.0)
        self.filter.act(action)
        return action
