"""Two-link planar reacher (PETS-style reward) on Gymnasium's MJCF; the goal is drawn per episode."""

import numpy as np
from torch import Tensor

from mbrl_ros.sim.simulation import Simulation
from mbrl_ros.tasks.base import CameraSpec, Task
from mbrl_ros.tasks.kinematics import SerialChain
from mbrl_ros.tasks.layout import BodyPose, JointPositions, JointVelocities, StateLayout

_JOINTS = ("joint0", "joint1")
_GOAL_RADIUS = 0.2  # goals are drawn uniformly in a disc of this radius (m)
_POSITION_NOISE = 0.1  # half-width of the uniform initial joint angle noise (rad)
_VELOCITY_NOISE = 0.005  # half-width of the uniform initial joint velocity noise (rad/s)
_SUCCESS_DISTANCE = 0.02  # m


class Reacher(Task):
    """Bring the fingertip to a goal point on the table.

    State (6): ``qpos`` = the two joint angles (rad), ``qvel`` = their rates (rad/s), ``goal_xy`` = the
    goal position (m, from the goal pose). Action (2): joint motor controls in [-1, 1].
    Reward: ``-|fingertip - goal| - |a|^2`` at s' (the fingertip by forward kinematics of the joint angles).
    Success: fingertip within 0.02 m of the goal for 5 consecutive steps. Never terminates; 50 steps of 0.02 s.
    """

    name = "reacher"
    mjcf = "gymnasium:envs/mujoco/assets/reacher.xml"
    dt = 0.02
    episode_length = 50
    layout = StateLayout([
        JointPositions("qpos", _JOINTS),
        JointVelocities("qvel", _JOINTS),
        BodyPose("goal_xy", "goal", ("x", "y")),
    ])
    bodies = {"goal": "target"}
    goal_bodies = ("target",)
    camera = CameraSpec(position=(0.0, 0.0, 0.9), target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0))
    success_hold_steps = 5

    def __init__(self, episode_length: int | None = None) -> None:
        super().__init__(episode_length)
        self._fingertip = SerialChain(self.model, "fingertip")
        if self._fingertip.joint_names != _JOINTS:
            raise ValueError(f"reacher chain joints {self._fingertip.joint_names} != {_JOINTS}")
        self._goal_height = float(self.model.body("target").pos[2])

    def _distance(self, state: Tensor) -> Tensor:
        fingertip = self._fingertip(state[..., self.layout["qpos"]])[..., :2]
        return (fingertip - state[..., self.layout["goal_xy"]]).norm(dim=-1)

    def reward(self, state: Tensor, action: Tensor, next_state: Tensor) -> Tensor:
        return -self._distance(next_state) - (action**2).sum(-1)

    def is_success(self, next_state: Tensor) -> Tensor:
        return self._distance(next_state) < _SUCCESS_DISTANCE

    def reset(self, sim: Simulation, rng: np.random.Generator) -> None:
        sim.set_joint_positions(_JOINTS, rng.uniform(-_POSITION_NOISE, _POSITION_NOISE, 2))
        sim.set_joint_velocities(_JOINTS, rng.uniform(-_VELOCITY_NOISE, _VELOCITY_NOISE, 2))
        radius = _GOAL_RADIUS * np.sqrt(rng.uniform())
        angle = rng.uniform(-np.pi, np.pi)
        goal = [radius * np.cos(angle), radius * np.sin(angle), self._goal_height]
        sim.set_body_pose("target", np.array([*goal, 1.0, 0.0, 0.0, 0.0]))
