"""A synthetic pixel world for PlaNet tests: a square that the actions push around a 64 x 64 frame."""

import functools

import numpy as np
import torch

from mbrl_ros.models.latent import LatentDynamicsModel, preprocess_images

SIZE, SQUARE, SPEED = 64, 10, 6.0  # frame and square size (pixels), pixels moved per unit action
CENTRE = (SIZE - SQUARE) / 2  # (pixels) where the top-left corner is when the square is centred
SMALL = {"depth": 4, "deterministic": 32, "stochastic": 8, "hidden": 32, "free_nats": 1.0}


def render(position: np.ndarray) -> np.ndarray:
    """(2,) top-left corner -> (3, 64, 64) uint8 frame: a white square on a dark background."""
    frame = np.full((3, SIZE, SIZE), 20, dtype=np.uint8)
    row, col = np.round(position).astype(int)
    frame[:, row: row + SQUARE, col: col + SQUARE] = 235
    return frame


def episodes(count: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random-action episodes, time-major: frames (T, N, 3, 64, 64) uint8, actions (T, N, 2) with actions[t]
    taken before frame t (zero at t = 0), rewards (T, N): minus the distance of the square from the centre."""
    rng = np.random.default_rng(seed)
    frames = np.empty((length, count, 3, SIZE, SIZE), np.uint8)
    actions = np.zeros((length, count, 2), np.float32)
    rewards = np.empty((length, count), np.float32)
    for n in range(count):
        position = rng.uniform(0, SIZE - SQUARE, size=2)
        for t in range(length):
            if t > 0:
                actions[t, n] = rng.uniform(-1, 1, size=2)
                position = step(position, actions[t, n])
            frames[t, n] = render(position)
            rewards[t, n] = reward(position)
    return frames, actions, rewards


def reward(position: np.ndarray) -> float:
    """Minus the distance of the square from the centre, in frame widths."""
    return -float(np.linalg.norm(position - CENTRE)) / SIZE


def step(position: np.ndarray, action: np.ndarray) -> np.ndarray:
    """The square's next position after ``action`` (2,) in [-1, 1]."""
    return np.clip(position + SPEED * np.clip(action, -1, 1), 0, SIZE - SQUARE)


def as_tensors(frames: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> tuple[torch.Tensor, ...]:
    return preprocess_images(torch.as_tensor(frames)), torch.as_tensor(actions), torch.as_tensor(rewards)


@functools.cache
def trained_model() -> LatentDynamicsModel:
    """A small world model trained for 250 steps on random-action episodes (trained once per session)."""
    torch.manual_seed(0)
    model = LatentDynamicsModel(2, **SMALL)
    observations, actions, rewards = as_tensors(*episodes(64, 10, seed=0))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, eps=1e-4)
    generator = torch.Generator().manual_seed(0)
    for _ in range(250):
        batch = torch.randint(0, 64, (8,), generator=generator)
        loss, _ = model.loss(observations[:, batch], actions[:, batch], rewards[:, batch])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
        optimizer.step()
    return model.eval()
