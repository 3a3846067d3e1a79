"""Half-cheetah running forward (PETS reward) on Gymnasium's MJCF."""

import numpy as np
from torch import Tensor

from mbrl_ros.sim.simulation import Simulation
from mbrl_ros.tasks.base import Task
from mbrl_ros.tasks.layout import JointPositions, JointVelocities, StateLayout

_LEG_JOINTS = ("bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot")
_ALL_JOINTS = ("rootx", "rootz", "rooty", *_LEG_JOINTS)
_ACTION_COST = 0.1
_SUCCESS_SPEED = 3.0  # m/s
_POSITION_NOISE = 0.1  # half-width of the uniform initial joint position noise (m, rad)
_VELOCITY_NOISE = 0.1  # standard deviation of the initial joint velocities (m/s, rad/s)


class HalfCheetah(Task):
    """Run forward as fast as possible.

    State (17): ``qpos`` = root height (m), root pitch (rad) and the six leg joint angles (rad) (the
    forward position is left out: the reward does not depend on it); ``qvel`` = forward and vertical root
    velocity (m/s), pitch rate and leg joint velocities (rad/s). Action (6): leg motor controls in [-1, 1].
    Reward: ``forward velocity of s' - 0.1 |a|^2``. Success: forward velocity at least 3 m/s for 20
    consecutive steps (1 s). Never terminates; 1000 steps of 0.05 s.
    """

    name = "half_cheetah"
    mjcf = "gymnasium:envs/mujoco/assets/half_cheetah.xml"
    dt = 0.05
    episode_length = 1000
    layout = StateLayout([JointPositions("qpos", _ALL_JOINTS[1:]), JointVelocities("qvel", _ALL_JOINTS)])
    camera = "track"
    success_hold_steps = 20

    def _forward_velocity(self, state: Tensor) -> Tensor:
        return state[..., self.layout["qvel"].start]

    def reward(self, state: Tensor, action: Tensor, next_state: Tensor) -> Tensor:
        return self._forward_velocity(next_state) - _ACTION_COST * (action**2).sum(-1)

    def is_success(self, next_state: Tensor) -> Tensor:
        return self._forward_velocity(next_state) >= _SUCCESS_SPEED

    def reset(self, sim: Simulation, rng: np.random.Generator) -> None:
        initial = sim.joint_positions(_ALL_JOINTS)
        sim.set_joint_positions(_ALL_JOINTS, initial + rng.uniform(-_POSITION_NOISE, _POSITION_NOISE, len(_ALL_JOINTS)))
        sim.set_joint_velocities(_ALL_JOINTS, rng.normal(0.0, _VELOCITY_NOISE, len(_ALL_JOINTS)))

