"""Seven-joint arm pushing a cylinder to a goal on a table (PETS-style reward) on Gymnasium's Pusher-v5 MJCF."""

import numpy as np
import torch
from torch import Tensor

from mbrl_ros.sim.simulation import Simulation
from mbrl_ros.tasks.base import CameraSpec, Task
from mbrl_ros.tasks.kinematics import SerialChain
from mbrl_ros.tasks.layout import BodyPose, BodyTwist, JointPositions, JointVelocities, StateLayout

_ARM_JOINTS = (
    "r_shoulder_pan_joint", "r_shoulder_lift_joint", "r_upper_arm_roll_joint", "r_elbow_flex_joint",
    "r_forearm_roll_joint", "r_wrist_flex_joint", "r_wrist_roll_joint",
)
_OBJECT_JOINTS = ("obj_slidex", "obj_slidey")
_TIP_WEIGHT = 0.5  # per metre between gripper and object
_GOAL_WEIGHT = 1.25  # per metre between object and goal
_ACTION_COST = 0.1
_VELOCITY_NOISE = 0.005  # half-width of the uniform initial arm joint velocity noise (rad/s)
_MIN_GOAL_DISTANCE = 0.17  # the object starts at least this far from the goal (m)
_SUCCESS_DISTANCE = 0.05  # m


class Pusher(Task):
    """Push the cylinder onto the goal.

    State (20): ``qpos``/``qvel`` = the arm's seven joint angles (rad) and rates (rad/s), ``object_xy`` and
    ``object_velocity_xy`` = the cylinder's position (m) and velocity (m/s) on the table, ``goal_xy`` = the
    goal position (m). Action (7): arm motor controls in [-2, 2].
    Reward: ``-0.5 |tip - object| - 1.25 |object - goal| - 0.1 |a|^2`` at s' (the gripper tip by forward
    kinematics). Success: object within 0.05 m of the goal for 5 consecutive steps. Never terminates;
    100 steps of 0.05 s. The cylinder starts at random, at least 0.17 m from the goal.
    """

    name = "pusher"
    mjcf = "gymnasium:envs/mujoco/assets/pusher_v5.xml"
    dt = 0.05
    episode_length = 100
    layout = StateLayout([
        JointPositions("qpos", _ARM_JOINTS),
        JointVelocities("qvel", _ARM_JOINTS),
        BodyPose("object_xy", "object", ("x", "y")),
        BodyTwist("object_velocity_xy", "object", ("vx", "vy")),
        BodyPose("goal_xy", "goal", ("x", "y")),
    ])
    bodies = {"object": "object", "goal": "goal"}
    goal_bodies = ("goal",)
    camera = CameraSpec(position=(1.4, -0.3, 0.9), target=(0.2, -0.3, -0.3))
    success_hold_steps = 5

    def __init__(self, episode_length: int | None = None) -> None:
        super().__init__(episode_length)
        self._tip = SerialChain(self.model, "tips_arm")
        if self._tip.joint_names != _ARM_JOINTS:
            raise ValueError(f"pusher chain joints {self._tip.joint_names} != {_ARM_JOINTS}")
        self._object_height = float(self.model.body("object").pos[2])
        self._goal_position = self.model.body("goal").pos.copy()

    def reward(self, state: Tensor, action: Tensor, next_state: Tensor) -> Tensor:
        tip = self._tip(next_state[..., self.layout["qpos"]])
        object_xy = next_state[..., self.layout["object_xy"]]
        object_position = torch.cat([object_xy, torch.full_like(object_xy[..., :1], self._object_height)], dim=-1)
        to_object = (tip - object_position).norm(dim=-1)
        to_goal = (object_xy - next_state[..., self.layout["goal_xy"]]).norm(dim=-1)
        return -_TIP_WEIGHT * to_object - _GOAL_WEIGHT * to_goal - _ACTION_COST * (action**2).sum(-1)

    def is_success(self, next_state: Tensor) -> Tensor:
        to_goal = next_state[..., self.layout["object_xy"]] - next_state[..., self.layout["goal_xy"]]
        return to_goal.norm(dim=-1) < _SUCCESS_DISTANCE

    def reset(self, sim: Simulation, rng: np.random.Generator) -> None:
        sim.set_joint_velocities(_ARM_JOINTS, rng.uniform(-_VELOCITY_NOISE, _VELOCITY_NOISE, len(_ARM_JOINTS)))
        while True:  # offsets of the cylinder from its (and the goal's) reference position
            offset = np.array([rng.uniform(-0.3, 0.0), rng.uniform(-0.2, 0.2)])
            if np.linalg.norm(offset) > _MIN_GOAL_DISTANCE:
                break
        sim.set_joint_positions(_OBJECT_JOINTS, offset)
        sim.set_body_pose("goal", np.array([*self._goal_position, 1.0, 0.0, 0.0, 0.0]))
