"""Behaviour cloning of a planner into a policy network, with DAgger's data aggregation (Ross et al. 2011).

Nagabandi et al. (2017) imitate their model-based controller this way before fine-tuning with model-free RL:
the policy is trained on (state, planner action) pairs; then the *policy* is run, the states it visits are
labelled with the planner's actions, added to the data set, and the policy is trained again.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from mbrl_ros.policies.network import PolicyNetwork


@dataclass(frozen=True)
class ImitationConfig:
    """How :func:`fit_policy` trains.

    Attributes:
        epochs: passes over the data set.
        batch_size: pairs per step.
        learning_rate: Adam's step size.
        weight_decay: Adam's L2 coefficient.
        seed: seeds the batch order.
        progress: show a progress bar.
    """

    epochs: int = 50
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    progress: bool = False


def fit_policy(policy: PolicyNetwork, states: np.ndarray, actions: np.ndarray,
               config: ImitationConfig | None = None) -> list[float]:
    """Trains ``policy`` to output ``actions`` (N, A) at ``states`` (N, S); returns the loss of each epoch.

    The loss is the mean squared error of actions scaled to [-1, 1] by the action bounds, so every action
    dimension counts alike whatever its units. The state normaliser is refitted on ``states``. Trains on the
    policy's device.
    """
    config = config or ImitationConfig()
    device = next(policy.parameters()).device
    states_t = torch.as_tensor(states, dtype=torch.float32, device=device)
    actions_t = torch.as_tensor(actions, dtype=torch.float32, device=device)
    if states_t.ndim != 2 or actions_t.shape != (states_t.shape[0], policy.action_dim) or states_t.shape[0] == 0:
        raise ValueError(f"expected states (N, {policy.state_dim}) and actions (N, {policy.action_dim}), "
                         f"got {tuple(states_t.shape)} and {tuple(actions_t.shape)}")
    policy.state_normalizer.fit(states_t)
    half_range = (policy.action_high - policy.action_low) / 2
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    losses = []
    policy.train()
    for _ in tqdm(range(config.epochs), desc="behaviour cloning", unit="epoch", disable=not config.progress):
        total = 0.0
        for batch in torch.randperm(len(states_t), generator=generator).to(device).split(config.batch_size):
            loss = ((policy(states_t[batch]) - actions_t[batch]) / half_range).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(states_t))
    policy.eval()
    return losses


def clone_policy(states: np.ndarray, actions: np.ndarray, action_low: list[float], action_high: list[float],
                 config: ImitationConfig | None = None, hidden_layers: int = 2,
                 hidden_units: int = 64) -> PolicyNetwork:
    """A fresh policy behaviour-cloned from (state, action) pairs: states (N, S), actions (N, A) in the bounds.

    What a learner exports from the commands a controller sent (Nagabandi et al. 2017: 64 x 64 units).
    """
    torch.manual_seed((config or ImitationConfig()).seed)
    policy = PolicyNetwork(states.shape[1], actions.shape[1], action_low, action_high, hidden_layers, hidden_units)
    fit_policy(policy, states, np.clip(actions, action_low, action_high), config)
    return policy


@dataclass
class DaggerDataset:
    """The aggregated (state, expert action) pairs."""

    states: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)

    def add(self, states: np.ndarray, actions: np.ndarray) -> None:
        self.states.append(np.asarray(states, np.float32))
        self.actions.append(np.asarray(actions, np.float32))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.states), np.concatenate(self.actions)

    def __len__(self) -> int:
        return sum(len(s) for s in self.states)


def dagger(
    policy: PolicyNetwork,
    dataset: DaggerDataset,
    visit: Callable[[PolicyNetwork], np.ndarray],
    expert: Callable[[np.ndarray], np.ndarray],
    iterations: int,
    config: ImitationConfig | None = None,
) -> list[float]:
    """DAgger: train on ``dataset``, then ``iterations`` times run the policy, label and aggregate, retrain.

    Args:
        policy: trained in place.
        dataset: the expert's own pairs to start from (extended in place).
        visit: runs the policy (e.g. episodes in simulation) and returns the states it visited (N, S).
        expert: the expert's actions (N, A) at states (N, S), e.g. a batched MPC.
        iterations: aggregation rounds.
        config: training of each round.

    Returns:
        the final training loss of each round (``iterations + 1`` values).
    """
    final_losses = [fit_policy(policy, *dataset.arrays(), config)[-1]]
    for _ in range(iterations):
        visited = visit(policy)
        dataset.add(visited, expert(visited))
        final_losses.append(fit_policy(policy, *dataset.arrays(), config)[-1])
    return final_losses
