"""Every task as a Gymnasium environment, with the same physics, rewards and episodes as the bridge node.

Importing this module registers the environments of :data:`ENV_IDS`::

    import gymnasium
    import mbrl_ros.sim.gym_env  # noqa: F401  (registers mbrl_ros/*)
    env = gymnasium.make("mbrl_ros/ShadowHandCube-v0", render_mode="rgb_array")

or in one call, ``gymnasium.make("mbrl_ros.sim.gym_env:mbrl_ros/ShadowHandCube-v0")``. Any task, a user's
``package.module:Class`` included, is available as ``gymnasium.make("mbrl_ros/Task-v0", task=...)``.
Observations are the task's state vectors (float64), actions its actuator controls (float32 Box with the
actuators' control ranges), rewards and terminations its batched functions on (s, a, s'); episodes are
truncated at the task's episode length. ``info["success"]`` is the task's success test on s',
``info["episode_success"]`` whether the episode has succeeded so far.
"""

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from mbrl_ros.sim.episode import TaskSimulation
from mbrl_ros.tasks import Task

ENV_IDS: dict[str, str] = {
    "cartpole_swingup": "mbrl_ros/CartpoleSwingUp-v0",
    "half_cheetah": "mbrl_ros/HalfCheetah-v0",
    "reacher": "mbrl_ros/Reacher-v0",
    "pusher": "mbrl_ros/Pusher-v0",
    "shadow_hand_cube": "mbrl_ros/ShadowHandCube-v0",
}
GENERIC_ENV_ID = "mbrl_ros/Task-v0"


class TaskEnv(gymnasium.Env):
    """A :class:`~mbrl_ros.tasks.Task` as a Gymnasium environment."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(
        self, task: str | Task, render_mode: str | None = None, width: int = 64, height: int = 64, **task_options: Any
    ) -> None:
        """
        Args:
            task: a task or its name / ``package.module:Class``.
            render_mode: None or ``"rgb_array"`` ((height, width, 3) uint8 frames from the task's camera).
            width, height: frame size (pixels).
            task_options: passed to the task's constructor (e.g. ``episode_length``).
        """
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self._simulation = TaskSimulation(task, **task_options)
        self.task = self._simulation.task
        self.render_mode = render_mode
        self.width, self.height = width, height
        self.metadata = {**self.metadata, "render_fps": 1.0 / self.task.dt}
        low, high = self.task.action_bounds
        self.action_space = spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(self.task.state_dim,), dtype=np.float64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(2**31))
        return self._simulation.reset(episode_seed), {"seed": episode_seed}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        step = self._simulation.step(np.asarray(action, dtype=np.float64))
        info = {"success": step.success, "episode_success": self._simulation.summary().success}
        return step.next_state, step.reward, step.terminated, step.truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self._simulation.render(self.width, self.height)

    def close(self) -> None:
        self._simulation.close()


def register_environments() -> None:
    """Registers :data:`ENV_IDS` and :data:`GENERIC_ENV_ID` with Gymnasium (again is a no-op)."""
    entry_point = f"{__name__}:TaskEnv"
    for task, env_id in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point=entry_point, kwargs={"task": task})
    if GENERIC_ENV_ID not in gymnasium.registry:
        gymnasium.register(GENERIC_ENV_ID, entry_point=entry_point)


register_environments()
