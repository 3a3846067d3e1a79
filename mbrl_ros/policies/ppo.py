"""PPO (Schulman et al. 2017): clipped surrogate objective with GAE, for fine-tuning a policy network.

The policy's network gives the mean of a Gaussian over actions; its standard deviation is learned, one per
action dimension, in units of half the action range. Actions are sampled from the Gaussian and clipped to
the bounds by the environment step. The value function is a separate MLP. Works on any Gymnasium
environment with a Box observation and action space.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Normal
from tqdm import tqdm

from mbrl_ros.policies.network import PolicyNetwork
from mbrl_ros.runs import CsvLog

CSV_COLUMNS = ("update", "environment_steps", "mean_return", "episodes", "policy_loss", "value_loss", "std")


@dataclass(frozen=True)
class PPOConfig:
    """PPO's hyper-parameters (defaults as in the PPO paper's MuJoCo experiments)."""

    steps_per_update: int = 2048
    epochs: int = 10
    minibatch_size: int = 64
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_ratio: float = 0.2
    learning_rate: float = 3e-4
    initial_std: float = 0.5  # of half the action range
    value_hidden_units: int = 64
    max_grad_norm: float = 0.5
    seed: int = 0


@dataclass
class _Rollout:
    states: Tensor
    actions: Tensor
    log_probs: Tensor
    advantages: Tensor
    returns: Tensor


class PPO:
    """Fine-tunes ``policy`` in ``env`` (both changed in place).

    Args:
        policy: the mean network; its state normaliser (fitted by behaviour cloning, or the identity) is kept.
        env: a Gymnasium environment whose observations are the policy's states.
        config: hyper-parameters.
        csv_path: where to append one row per update (:data:`CSV_COLUMNS`).
    """

    def __init__(self, policy: PolicyNetwork, env: gymnasium.Env, config: PPOConfig | None = None,
                 csv_path: str | os.PathLike | None = None):
        self.policy, self.env, self.config = policy, env, config or PPOConfig()
        if env.observation_space.shape != (policy.state_dim,) or env.action_space.shape != (policy.action_dim,):
            raise ValueError(f"env spaces {env.observation_space.shape} / {env.action_space.shape} do not match "
                             f"the policy's ({policy.state_dim},) / ({policy.action_dim},)")
        torch.manual_seed(self.config.seed)
        hidden = self.config.value_hidden_units
        self.value = nn.Sequential(nn.Linear(policy.state_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden),
                                   nn.Tanh(), nn.Linear(hidden, 1))
        self.log_std = nn.Parameter(torch.full((policy.action_dim,), float(np.log(self.config.initial_std))))
        parameters = [*policy.parameters(), *self.value.parameters(), self.log_std]
        self.optimizer = torch.optim.Adam(parameters, lr=self.config.learning_rate)
        self.csv_path = Path(csv_path) if csv_path is not None else None
        self.environment_steps, self.updates = 0, 0
        self._state, _ = env.reset(seed=self.config.seed)
        self._episode_return, self.finished_returns = 0.0, []

    def distribution(self, states: Tensor) -> Normal:
        half_range = (self.policy.action_high - self.policy.action_low) / 2
        return Normal(self.policy(states), self.log_std.exp() * half_range)

    def state_value(self, states: Tensor) -> Tensor:
        return self.value(self.policy.state_normalizer.normalize(states)).squeeze(-1)

    def train(self, environment_steps: int, progress: bool = False) -> list[dict]:
        """Runs updates until ``environment_steps`` more steps were taken; returns one record per update."""
        records = []
        target = self.environment_steps + environment_steps
        with tqdm(total=environment_steps, desc="PPO", unit="step", disable=not progress) as bar:
            while self.environment_steps < target:
                before = len(self.finished_returns)
                rollout = self._collect()
                losses = self._update(rollout)
                returns = self.finished_returns[before:]
                record = {"update": self.updates, "environment_steps": self.environment_steps,
                          "mean_return": float(np.mean(returns)) if returns else float("nan"),
                          "episodes": len(returns), **losses, "std": self.log_std.detach().exp().mean().item()}
                records.append(record)
                self._log(record)
                bar.update(self.config.steps_per_update)
                bar.set_postfix(mean_return=f"{record['mean_return']:.4g}")
        return records

    @torch.no_grad()
    def _collect(self) -> _Rollout:
        config, steps = self.config, self.config.steps_per_update
        states = torch.empty(steps, self.policy.state_dim)
        next_states = torch.empty(steps, self.policy.state_dim)
        actions = torch.empty(steps, self.policy.action_dim)
        log_probs, rewards = torch.empty(steps), torch.empty(steps)
        terminals, episode_ends = torch.empty(steps), torch.empty(steps)
        low, high = self.env.action_space.low, self.env.action_space.high
        for t in range(steps):
            state = torch.as_tensor(self._state, dtype=torch.float32)
            distribution = self.distribution(state)
            action = distribution.sample()
            next_state, reward, terminated, truncated, _ = self.env.step(np.clip(action.numpy(), low, high))
            states[t], actions[t], log_probs[t] = state, action, distribution.log_prob(action).sum()
            rewards[t], next_states[t] = float(reward), torch.as_tensor(next_state, dtype=torch.float32)
            terminals[t], episode_ends[t] = float(terminated), float(terminated or truncated)
            self._episode_return += float(reward)
            if terminated or truncated:
                self.finished_returns.append(self._episode_return)
                self._episode_return = 0.0
                next_state, _ = self.env.reset()
            self._state = next_state
        self.environment_steps += steps
        values = self.state_value(states)
        next_values = self.state_value(next_states) * (1.0 - terminals)  # bootstraps truncated episodes
        deltas = rewards + config.gamma * next_values - values
        advantages = torch.empty(steps)
        running = 0.0
        for t in reversed(range(steps)):
            running = deltas[t] + config.gamma * config.gae_lambda * (1.0 - episode_ends[t]) * running
            advantages[t] = running
        return _Rollout(states, actions, log_probs, advantages, advantages + values)

    def _update(self, rollout: _Rollout) -> dict[str, float]:
        config = self.config
        advantages = (rollout.advantages - rollout.advantages.mean()) / (rollout.advantages.std() + 1e-8)
        policy_losses, value_losses = [], []
        for _ in range(config.epochs):
            for batch in torch.randperm(len(advantages)).split(config.minibatch_size):
                distribution = self.distribution(rollout.states[batch])
                ratio = (distribution.log_prob(rollout.actions[batch]).sum(-1) - rollout.log_probs[batch]).exp()
                clipped = ratio.clamp(1 - config.clip_ratio, 1 + config.clip_ratio)
                policy_loss = -torch.min(ratio * advantages[batch], clipped * advantages[batch]).mean()
                value_loss = (self.state_value(rollout.states[batch]) - rollout.returns[batch]).square().mean()
                self.optimizer.zero_grad()
                (policy_loss + 0.5 * value_loss).backward()
                nn.utils.clip_grad_norm_([p for group in self.optimizer.param_groups for p in group["params"]],
                                         config.max_grad_norm)
                self.optimizer.step()
                policy_losses.append(policy_loss.item())
                value_losses.append(value_loss.item())
        self.updates += 1
        self.policy.eval()
        return {"policy_loss": float(np.mean(policy_losses)), "value_loss": float(np.mean(value_losses))}

    def _log(self, record: dict) -> None:
        if self.csv_path is not None:
            log = CsvLog(self.csv_path, CSV_COLUMNS)
            log.write(**record)
            log.close()

