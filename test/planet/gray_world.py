"""A trivial pixel task with a known optimum: the action brightens or darkens a uniformly grey frame.

State: the grey level g in [0, 1]; action a in [-1, 1] moves it by ``STEP * a`` (clipped to [0, 1]); the
reward of a frame is ``-SCALE |g - TARGET|``. Optimal: move towards the target at full speed, then stay.
"""

import functools

import numpy as np
import torch

from mbrl_ros.models.latent import LatentDynamicsModel, preprocess_images

STEP, TARGET = 0.2, 0.5  # grey change per unit action, the best grey level
SCALE = 10.0  # reward per unit of grey distance: a strong reward signal trains in few steps
# free nats well below the paper's 3: the prior then learns the dynamics sharply in few steps
MODEL = {"depth": 4, "deterministic": 32, "stochastic": 4, "hidden": 32, "free_nats": 0.1}


def render(level: float) -> np.ndarray:
    """(3, 64, 64) uint8 frame of grey ``level`` in [0, 1]."""
    return np.full((3, 64, 64), round(255 * level), dtype=np.uint8)


def step(level: float, action: float) -> float:
    return float(np.clip(level + STEP * np.clip(action, -1.0, 1.0), 0.0, 1.0))


def reward(level: float) -> float:
    return -SCALE * abs(level - TARGET)


def episodes(count: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random-action episodes, time-major: frames (T, N, 3, 64, 64) uint8, actions (T, N, 1), rewards (T, N)."""
    rng = np.random.default_rng(seed)
    frames = np.empty((length, count, 3, 64, 64), np.uint8)
    actions = np.zeros((length, count, 1), np.float32)
    rewards = np.empty((length, count), np.float32)
    for n in range(count):
        level = rng.uniform(0.0, 1.0)
        for t in range(length):
            if t > 0:
                actions[t, n] = rng.uniform(-1.0, 1.0)
                level = step(level, actions[t, n, 0])
            frames[t, n] = render(level)
            rewards[t, n] = reward(level)
    return frames, actions, rewards


@functools.cache
def trained_model() -> LatentDynamicsModel:
    """A small world model trained for 200 steps on random-action episodes (trained once per session)."""
    torch.manual_seed(0)
    model = LatentDynamicsModel(1, **MODEL)
    frames, actions, rewards = episodes(64, 16, seed=0)
    observations, actions, rewards = preprocess_images(torch.as_tensor(frames)), torch.as_tensor(actions), \
        torch.as_tensor(rewards)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, eps=1e-4)
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        batch = torch.randint(0, 64, (8,), generator=generator)
        loss, _ = model.loss(observations[:, batch], actions[:, batch], rewards[:, batch])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
        optimizer.step()
    return model.eval()

