"""A task's episodes on a simulation: seeded resets, steps that report reward, termination and success.

The reward, termination and success of every step come from the task's batched torch functions evaluated
on the one transition (s, a, s'), so what the simulator reports is exactly what a planner computes.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mbrl_ros.sim.simulation import Simulation
from mbrl_ros.tasks import Task, make_task


@dataclass(frozen=True)
class Step:
    """One control period: s (S,), the applied action a (A,), s' (S,) and what the task says about them."""

    state: np.ndarray
    action: np.ndarray
    next_state: np.ndarray
    reward: float
    terminated: bool  # s' ends the episode (the task's termination)
    truncated: bool  # the episode reached its length
    success: bool  # the task's success test on s'


@dataclass(frozen=True)
class EpisodeSummary:
    """What an episode amounted to."""

    episode: int  # index since the simulation was created, from 0
    seed: int  # the seed of its reset
    episode_return: float  # sum of rewards
    length: int  # control steps taken
    success: bool  # the success test held for the task's success_hold_steps consecutive steps at some point
    terminated: bool
    truncated: bool


class TaskSimulation:
    """Runs a task's episodes: ``reset(seed) -> s``, ``step(a) -> Step``; also a :class:`~mbrl_ros.tasks.StateSource`.

    Episode ``k`` without an explicit seed uses ``seed + k``, so a run is reproducible from one number.
    """

    def __init__(self, task: Task | str, seed: int = 0, **task_options: Any) -> None:
        """
        Args:
            task: a task, or its name / ``package.module:Class`` (built with ``task_options``).
            seed: base seed of the episodes.
        """
        self.task = make_task(task, **task_options) if isinstance(task, str) else task
        self.sim = Simulation(self.task.model, self.task.dt)
        self.layout = self.task.layout
        self.base_seed = int(seed)
        self.episode = -1
        self.seed = self.base_seed
        self._return = 0.0
        self._length = 0
        self._success_streak = 0
        self._succeeded = False
        self._terminated = False
        self.reset()

    # --- StateSource: body keys map to the task's MJCF bodies
    def joint_positions(self, names: Sequence[str]) -> np.ndarray:
        return self.sim.joint_positions(names)

    def joint_velocities(self, names: Sequence[str]) -> np.ndarray:
        return self.sim.joint_velocities(names)

    def body_pose(self, body: str) -> np.ndarray:
        return self.sim.body_pose(self.task.bodies[body])

    def body_twist(self, body: str) -> np.ndarray:
        return self.sim.body_twist(self.task.bodies[body])

    def state(self) -> np.ndarray:
        """The current state vector (S,) in the task's layout."""
        return self.layout.assemble(self)

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Starts the next episode (seed: ``base seed + episode index`` unless given); returns its first state."""
        self.episode += 1
        self.seed = self.base_seed + self.episode if seed is None else int(seed)
        self.sim.reset()
        self.task.reset(self.sim, np.random.default_rng(self.seed))
        self.sim.forward()
        self._return = 0.0
        self._length = 0
        self._success_streak = 0
        self._succeeded = False
        self._terminated = False
        return self.state()

    @property
    def done(self) -> bool:
        """The episode is over (terminated or at its length): :meth:`reset` before stepping again."""
        return self._terminated or self._length >= self.task.episode_length

    @property
    def length(self) -> int:
        return self._length

    def step(self, action: np.ndarray) -> Step:
        """Applies ``action`` (A,) (clamped to the actuator ranges) for one control period.

        Raises:
            ValueError: wrong length or non-finite action.
            RuntimeError: the episode is over.
        """
        if self.done:
            raise RuntimeError("the episode is over: call reset() first")
        state = self.state()
        applied = self.sim.step(action)
        next_state = self.state()
        with torch.no_grad():
            s, a, s_next = (torch.from_numpy(x)[None] for x in (state, applied, next_state))
            reward = float(self.task.reward(s, a, s_next)[0])
            terminated = bool(self.task.terminated(s_next)[0])
            success = bool(self.task.is_success(s_next)[0])
        self._length += 1
        self._return += reward
        self._terminated = terminated
        self._success_streak = self._success_streak + 1 if success else 0
        self._succeeded |= self._success_streak >= self.task.success_hold_steps
        truncated = not terminated and self._length >= self.task.episode_length
        return Step(state, applied, next_state, reward, terminated, truncated, success)

    def hold_command(self) -> np.ndarray:
        """The action that holds the current posture (see :meth:`Simulation.hold_command`)."""
        return self.sim.hold_command()

    def summary(self) -> EpisodeSummary:
        """The current (or just finished) episode so far."""
        return EpisodeSummary(
            episode=self.episode, seed=self.seed, episode_return=self._return, length=self._length,
            success=self._succeeded, terminated=self._terminated,
            truncated=not self._terminated and self._length >= self.task.episode_length,
        )

    def render(self, width: int = 64, height: int = 64) -> np.ndarray:
        """(height, width, 3) uint8 image from the task's camera."""
        return self.sim.render(width, height, self.task.camera_name)

    def close(self) -> None:
        self.sim.close()
