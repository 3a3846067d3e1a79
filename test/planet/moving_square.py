"""A synthetic pixel world for PlaNet tests: a square that the actions push around a 64 x 64 frame."""

import numpy as np

SIZE, SQUARE, SPEED = 64, 10, 6.0  # frame and square size (pixels), pixels moved per unit action


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
                position = np.clip(position + SPEED * actions[t, n], 0, SIZE - SQUARE)
            frames[t, n] = render(position)
            rewards[t, n] = -np.linalg.norm(position - (SIZE - SQUARE) / 2) / SIZE
    return frames, actions, rewards
