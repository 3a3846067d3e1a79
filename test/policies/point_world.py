"""A small continuous control task for policy tests: steer a point to a target on a plane."""

import gymnasium
import numpy as np

STEPS = 25  # episode length (control steps)


class PointReach(gymnasium.Env):
    """State: position (2) and target (2); action: velocity (2) in [-1, 1]; reward: minus the distance."""

    observation_space = gymnasium.spaces.Box(-2.0, 2.0, shape=(4,), dtype=np.float32)
    action_space = gymnasium.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._state = self.np_random.uniform(-1, 1, size=4).astype(np.float32)
        self._t = 0
        return self._state.copy(), {}

    def step(self, action):
        self._t += 1
        position = np.clip(self._state[:2] + 0.1 * np.clip(action, -1, 1), -2, 2)
        self._state = np.concatenate([position, self._state[2:]]).astype(np.float32)
        reward = -float(np.linalg.norm(position - self._state[2:]))
        return self._state.copy(), reward, False, self._t >= STEPS, {}


def expert(states: np.ndarray) -> np.ndarray:
    """The optimal controller: full speed towards the target (N, 4) -> (N, 2)."""
    direction = states[:, 2:] - states[:, :2]
    return np.clip(direction * 10, -1, 1)
