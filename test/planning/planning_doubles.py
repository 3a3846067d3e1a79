"""Dynamics models with known behaviour for the planning tests."""

import torch
from torch import Tensor, nn

from mbrl_ros.models import DynamicsModel


class OffsetEnsemble(DynamicsModel):
    """Member e predicts ``s' = s + a + offsets[e]`` (S = A = 1), with an optional constant variance.

    The increment ``s' - s - a`` of a predicted step names the member that made it. Every call of
    :meth:`predict` is logged with its input shape.
    """

    def __init__(self, offsets: list[float], variance: float | None = None):
        super().__init__()
        self.offsets = nn.Parameter(torch.tensor(offsets), requires_grad=False)
        self.state_dim, self.action_dim, self.ensemble_size = 1, 1, len(offsets)
        self.variance = variance
        self.calls: list[tuple[int, ...]] = []

    def predict(self, state: Tensor, action: Tensor) -> tuple[Tensor, Tensor | None]:
        self.calls.append(tuple(state.shape))
        if state.ndim == 2:
            state = state.expand(self.ensemble_size, *state.shape)
            action = action.expand(self.ensemble_size, *action.shape)
        mean = state + action + self.offsets[:, None, None]
        return mean, None if self.variance is None else torch.full_like(mean, self.variance)


def point_reward(target: float):
    """Reward ``-(s' - target)^2`` for a one-dimensional state."""

    def reward(state: Tensor, action: Tensor, next_state: Tensor) -> Tensor:
        return -(next_state[:, 0] - target).square()

    return reward
