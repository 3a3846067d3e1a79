"""PlaNet episodes from a robot's streams: camera frames, states and commands joined into decisions.

A frame and a state with the same stamp (the bridge stamps its camera frames with the state's) form an
observation; the command in force when an observation completes is the action that led to it, and the task's
reward ``r(s, a, s')`` of that step is computed from the two states. An episode ends at the stamp of its last
state (``EpisodeSummary``'s header), so observations of the next episode that arrive before the summary are
kept for it. Steps are grouped into decisions of ``action_repeat`` steps, as :class:`PixelEnv` does offline.
"""

from dataclasses import dataclass

import numpy as np
import torch

from mbrl_ros.planet.control import checked_frame
from mbrl_ros.planet.training import Episode
from mbrl_ros.tasks import Task


@dataclass
class _Observation:
    stamp: float
    frame: np.ndarray  # (3, 64, 64) uint8
    state: np.ndarray  # (S,)
    command: np.ndarray | None  # the command in force when it completed


class StreamEpisodeBuilder:
    """Builds :class:`Episode` s (normalised actions) from frames, states and commands, in any arrival order.

    Args:
        task: gives the reward function and the action bounds.
        action_repeat: control steps per decision.
    """

    def __init__(self, task: Task, action_repeat: int):
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be a positive integer, got {action_repeat}")
        self.task, self.action_repeat = task, action_repeat
        self.lower, self.upper = task.action_bounds
        self._frames: dict[int, np.ndarray] = {}
        self._states: dict[int, np.ndarray] = {}
        self._observations: list[_Observation] = []
        self._command: np.ndarray | None = None

    def add_frame(self, stamp: float, rgb: np.ndarray) -> None:
        """A (64, 64, 3) uint8 frame. Raises ValueError for another shape."""
        key = _key(stamp)
        self._frames[key] = checked_frame(rgb).numpy()
        self._join(key)

    def add_state(self, stamp: float, state: np.ndarray) -> None:
        key = _key(stamp)
        self._states[key] = np.asarray(state, dtype=np.float64)
        self._join(key)

    def add_command(self, command: np.ndarray) -> None:
        self._command = np.asarray(command, dtype=np.float64)

    def _join(self, key: int) -> None:
        if key in self._frames and key in self._states:
            self._observations.append(_Observation(key * 1e-9, self._frames.pop(key), self._states.pop(key),
                                                   self._command))

    def end_episode(self, last_stamp: float) -> Episode | None:
        """Closes the episode whose last state has ``last_stamp``; its Episode (None if under two frames)."""
        cut = _key(last_stamp) * 1e-9
        ended = [o for o in self._observations if o.stamp <= cut]
        self._observations = [o for o in self._observations if o.stamp > cut]
        self._frames = {k: v for k, v in self._frames.items() if k * 1e-9 > cut}
        self._states = {k: v for k, v in self._states.items() if k * 1e-9 > cut}
        return self._episode(sorted(ended, key=lambda o: o.stamp))

    def _episode(self, observations: list[_Observation]) -> Episode | None:
        steps = []  # (command, reward, frame) of each step with a known command
        for previous, current in zip(observations[:-1], observations[1:], strict=True):
            if current.command is None:
                continue
            with torch.no_grad():
                s, a, s_next = (torch.from_numpy(x)[None] for x in (previous.state, current.command, current.state))
                reward = float(self.task.reward(s, a, s_next)[0])
            steps.append((current.command, reward, current.frame))
        if not steps:
            return None
        frames, actions, rewards = [observations[0].frame], [np.zeros(len(self.lower), np.float32)], [0.0]
        for start in range(0, len(steps), self.action_repeat):
            block = steps[start: start + self.action_repeat]
            span = self.upper - self.lower
            actions.append((2.0 * (block[0][0] - self.lower) / span - 1.0).clip(-1, 1).astype(np.float32))
            rewards.append(sum(step[1] for step in block))
            frames.append(block[-1][2])
        return Episode(np.stack(frames), np.stack(actions), np.asarray(rewards, np.float32))


def _key(stamp: float) -> int:
    """Stamps as integer nanoseconds, so equal stamps from two messages match exactly."""
    return round(stamp * 1e9)
