"""Joint-space posture tracking on any position-controlled hand or arm: a task that needs no code and no MJCF.

The robot is described by its configuration (the ``task_options`` of a config): the joints it commands, their
position limits and the control period. The goal posture arrives at run time, by joint name (the controller
subscribes to a sensor_msgs/JointState goal topic and calls :meth:`JointPostureTask.set_goal`).
"""

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from mbrl_ros.tasks.base import Task
from mbrl_ros.tasks.layout import JointPositions, JointVelocities, StateLayout

_VELOCITY_COST = 0.01  # per (rad/s)^2, relative to the squared position error (rad^2)


class JointPostureTask(Task):
    """Bring the joints to a goal posture and hold it there.

    State (2J): ``qpos`` then ``qvel`` of ``joints`` from ``/joint_states``. Action (J): position targets
    (rad) for ``joints``, in that order (the order of ``<controller>/commands``), within ``[lower, upper]``.
    Reward: ``-mean((q' - goal)^2) - 0.01 mean(qdot'^2)``. Success: every joint within ``goal_tolerance`` of
    the goal. The goal starts at the middle of the limits.

    Args:
        joints: joint names, in command order.
        lower, upper: position limits (rad), one per joint: the action bounds.
        dt: control period (s), the spacing of the learned transitions.
        goal_tolerance: success radius per joint (rad).
        episode_length: control steps per episode.
    """

    name = "joint_posture"
    mjcf = ""
    dt = 0.05
    episode_length = 200

    def __init__(self, joints: Sequence[str] = (), lower: Sequence[float] = (), upper: Sequence[float] = (),
                 dt: float = 0.05, goal_tolerance: float = 0.05, episode_length: int | None = None) -> None:
        super().__init__(episode_length)
        self.joints = tuple(str(j) for j in joints)
        if not self.joints or len(set(self.joints)) != len(self.joints):
            raise ValueError(f"joint_posture needs distinct joint names (task_options.joints), got {list(joints)}")
        self._lower, self._upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
        if self._lower.shape != (len(self.joints),) or self._upper.shape != (len(self.joints),):
            raise ValueError(f"joint_posture: lower and upper need one limit per joint ({len(self.joints)})")
        if not (np.all(np.isfinite(self._lower)) and np.all(np.isfinite(self._upper))
                and np.all(self._lower < self._upper)):
            raise ValueError("joint_posture: the limits must be finite with lower < upper for every joint")
        if not (dt > 0 and goal_tolerance > 0):
            raise ValueError(f"joint_posture: dt and goal_tolerance must be positive, got {dt}, {goal_tolerance}")
        self.dt, self.goal_tolerance = float(dt), float(goal_tolerance)
        self.layout = StateLayout([JointPositions("qpos", self.joints), JointVelocities("qvel", self.joints)])
        self.goal = torch.tensor((self._lower + self._upper) / 2)

    @property
    def model(self):
        raise ValueError("joint_posture has no simulation model: it runs on a real robot (hardware.launch.py)")

    @property
    def action_dim(self) -> int:
        return len(self.joints)

    @property
    def actuator_names(self) -> tuple[str, ...]:
        return self.joints

    @property
    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self._lower.copy(), self._upper.copy()

    def hold_command(self, joint_positions: Mapping[str, float]) -> np.ndarray:
        return np.clip([joint_positions[j] for j in self.joints], self._lower, self._upper)

    def set_goal(self, positions: Mapping[str, float]) -> None:
        """Moves the goal of the named joints (rad, clipped to the limits); other joints keep theirs.

        Raises:
            ValueError: a name that is not one of the task's joints, or a non-finite position.
        """
        unknown = sorted(set(positions) - set(self.joints))
        if unknown:
            raise ValueError(f"goal names unknown joints {unknown}; the task's joints are {list(self.joints)}")
        if not all(np.isfinite(value) for value in positions.values()):
            raise ValueError("goal positions must be finite")
        goal = self.goal.numpy().copy()
        for index, joint in enumerate(self.joints):
            if joint in positions:
                goal[index] = np.clip(positions[joint], self._lower[index], self._upper[index])
        self.goal = torch.tensor(goal)

    def _position_error(self, state: Tensor) -> Tensor:
        return state[..., self.layout["qpos"]] - self.goal.to(state)

    def reward(self, state: Tensor, action: Tensor, next_state: Tensor) -> Tensor:
        velocity = next_state[..., self.layout["qvel"]]
        return -(self._position_error(next_state) ** 2).mean(-1) - _VELOCITY_COST * (velocity**2).mean(-1)

    def is_success(self, next_state: Tensor) -> Tensor:
        return self._position_error(next_state).abs().amax(-1) < self.goal_tolerance

    def reset(self, sim, rng: np.random.Generator) -> None:
        raise ValueError("joint_posture has no simulation: it runs on a real robot")
