"""In-hand cube rotation with the Shadow hand (PDDM's cube task) on gymnasium-robotics' MJCF assets."""

import re

import mujoco
import numpy as np
from torch import Tensor

from mbrl_ros.rotations import quaternion_angle
from mbrl_ros.settings import is_number
from mbrl_ros.sim.simulation import Simulation
from mbrl_ros.tasks.base import CameraSpec, Task
from mbrl_ros.tasks.layout import (
    ANGULAR_VELOCITY,
    LINEAR_VELOCITY,
    ORIENTATION,
    POSITION,
    BodyPose,
    BodyTwist,
    JointPositions,
    JointVelocities,
    StateLayout,
)

HAND_JOINTS = tuple(
    f"robot0:{joint}"
    for joint in (
        "WRJ1", "WRJ0",
        "FFJ3", "FFJ2", "FFJ1", "FFJ0",
        "MFJ3", "MFJ2", "MFJ1", "MFJ0",
        "RFJ3", "RFJ2", "RFJ1", "RFJ0",
        "LFJ4", "LFJ3", "LFJ2", "LFJ1", "LFJ0",
        "THJ4", "THJ3", "THJ2", "THJ1", "THJ0",
    )
)
_CUBE_START = np.array([1.0, 0.87, 0.17])  # resting on the palm (m)
_GOAL_MARKER_OFFSET = np.array([0.0, -0.12, 0.05])  # where the goal cube is drawn, from the start (m)
_JOINT_NOISE = 0.05  # half-width of the uniform initial hand joint noise (rad), clipped to the joint ranges
_CUBE_POSITION_NOISE = 0.005  # half-width of the uniform initial cube x, y noise (m)
_CUBE_YAW_NOISE = 0.15  # half-width of the uniform initial cube yaw noise (rad)
_SETTLE_TIME = 0.2  # s the hand holds still at reset so the cube comes to rest
_DROP_HEIGHT = 0.1  # the cube counts as dropped below this height (m); it rests at ~0.167 on the palm
_SUCCESS_ANGLE = 0.4  # rad
_SUCCESS_HOLD_TIME = 0.4  # s the orientation must stay within _SUCCESS_ANGLE
_EPISODE_TIME = 4.0  # s
_GOAL_CHOICE = re.compile(r"[xyz][+-]?")  # one entry of goal_axes: an axis, optionally signed


def _axis_angle_quaternion(axis: np.ndarray, angle: float) -> np.ndarray:
    return np.array([np.cos(angle / 2), *(np.sin(angle / 2) * axis / np.linalg.norm(axis))])


def _finite_number(value: object) -> float | None:
    """``value`` as a float if it is a finite real number (a bool is not), else None."""
    if not is_number(value) or not np.isfinite(value):
        return None
    return float(value)


def _multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    product = np.zeros(4)
    mujoco.mju_mulQuat(product, a, b)
    return product


class ShadowHandCube(Task):
    """Rotate a cube lying on the palm to a goal orientation without dropping it.

    The hand has 24 hinge joints and 20 position actuators (the distal and middle joints of the four
    fingers are coupled by tendons); the cube is a free body. Each episode draws the goal as the cube's
    initial orientation turned by ``goal_angle`` about one of the world axes in ``goal_axes``, either way.

    State (65): ``hand_qpos``/``hand_qvel`` (24 each, rad, rad/s, :data:`HAND_JOINTS` order),
    ``object_position`` (3, m), ``object_orientation`` (4, quaternion w first), ``object_linear_velocity``
    (3, m/s), ``object_angular_velocity`` (3, rad/s, world frame), ``goal_orientation`` (4).
    Action (20): joint angle targets of the position actuators (rad), bounded by their ranges.
    Reward: ``-angle(object, goal) - drop_penalty * dropped`` at s' (dropped: cube centre below 0.1 m).
    Terminates when dropped. Success: orientation error under 0.4 rad (and not dropped) for 0.4 s (10
    consecutive steps at the default control period). Episodes last 4 s: 100 steps of 0.04 s by default.
    """

    name = "shadow_hand_cube"
    mjcf = "gymnasium_robotics:envs/assets/hand/manipulate_block.xml"
    layout = StateLayout([
        JointPositions("hand_qpos", HAND_JOINTS),
        JointVelocities("hand_qvel", HAND_JOINTS),
        BodyPose("object_position", "object", POSITION),
        BodyPose("object_orientation", "object", ORIENTATION),
        BodyTwist("object_linear_velocity", "object", LINEAR_VELOCITY),
        BodyTwist("object_angular_velocity", "object", ANGULAR_VELOCITY),
        BodyPose("goal_orientation", "goal", ORIENTATION),
    ])
    bodies = {"object": "object", "goal": "target"}
    goal_bodies = ("target",)
    camera = CameraSpec(position=(1.35, 0.7, 0.45), target=(1.0, 0.88, 0.17))

    def __init__(self, episode_length: int | None = None, goal_axes: str = "xyz", goal_angle: float = np.pi / 2,
                 control_period: float = 0.04, drop_penalty: float = 20.0):
        """
        Args:
            episode_length: control steps per episode (default: 4 s of them).
            goal_axes: world axes (any of ``x``, ``y``, ``z``) the goal rotation is drawn about, each optionally
                signed to turn one way only: ``"xz"`` draws x or z and then either sign, ``"x+y-"`` a positive
                turn about x or a negative one about y.
            goal_angle: magnitude of the goal rotation (rad).
            control_period: s per control step, a multiple of the model's 0.002 s physics step (default:
                gymnasium-robotics' hand environments; PDDM's cube runs at 0.1).
            drop_penalty: reward lost when the cube drops, against 1 per radian of orientation error per step
                (PDDM's cube: 1000 against 7, about 140).
        """
        period = _finite_number(control_period)
        if period is None or period <= 0:
            raise ValueError(f"control_period must be a positive number of seconds, got {control_period!r}")
        self.dt = period
        self.episode_length = max(1, round(_EPISODE_TIME / self.dt))
        self.success_hold_steps = max(1, round(_SUCCESS_HOLD_TIME / self.dt))
        super().__init__(episode_length)
        if not isinstance(goal_axes, str) or not re.fullmatch(f"(?:{_GOAL_CHOICE.pattern})+", goal_axes):
            raise ValueError("goal_axes must be a non-empty combination of 'x', 'y', 'z', each optionally followed "
                             f"by '+' or '-' (e.g. 'xyz', 'x+y-'), got {goal_axes!r}")
        self.goal_axes = goal_axes
        self._goal_choices = _GOAL_CHOICE.findall(goal_axes)
        self.goal_angle = float(goal_angle)
        penalty = _finite_number(drop_penalty)
        if penalty is None or penalty < 0:
            raise ValueError(f"drop_penalty must be a non-negative number, got {drop_penalty!r}")
        self.drop_penalty = penalty

    def dropped(self, state: Tensor) -> Tensor:
        """Whether the cube has fallen off the hand, (N, S) -> (N,) bool."""
        return state[..., self.layout["object_position"]][..., 2] < _DROP_HEIGHT

    def orientation_error(self, state: Tensor) -> Tensor:
        """Angle between the cube's and the goal's orientation (rad), (N, S) -> (N,)."""
        object_orientation = state[..., self.layout["object_orientation"]]
        return quaternion_angle(object_orientation, state[..., self.layout["goal_orientation"]])

    def goal_turn(self, state: np.ndarray) -> str:
        """The turn from the cube's orientation in ``state`` (S,) to the goal's, named by the world axis it is
        nearest to and its sign: ``"x+"`` is a positive turn about x (toward the fingertips), ``"y-"`` a negative
        one about y (the fingers' own axis)."""
        cube = np.asarray(state[self.layout["object_orientation"]], dtype=float)
        turn = _multiply(np.asarray(state[self.layout["goal_orientation"]], dtype=float), cube * [1, -1, -1, -1])
        turn *= 1.0 if turn[0] >= 0 else -1.0  # the same rotation with w >= 0: its vector part points along the axis
        axis = int(np.abs(turn[1:]).argmax())
        return "xyz"[axis] + ("+" if turn[1 + axis] > 0 else "-")

    def reward(self, state: Tensor, action: Tensor, next_state: Tensor) -> Tensor:
        return -self.orientation_error(next_state) - self.drop_penalty * self.dropped(next_state).to(next_state.dtype)

    def terminated(self, next_state: Tensor) -> Tensor:
        return self.dropped(next_state)

    def is_success(self, next_state: Tensor) -> Tensor:
        return (self.orientation_error(next_state) < _SUCCESS_ANGLE) & ~self.dropped(next_state)

    def reset(self, sim: Simulation, rng: np.random.Generator) -> None:
        ranges = np.array([sim.model.joint(name).range for name in HAND_JOINTS])
        posture = np.clip(rng.uniform(-_JOINT_NOISE, _JOINT_NOISE, len(HAND_JOINTS)), ranges[:, 0], ranges[:, 1])
        sim.set_joint_positions(HAND_JOINTS, posture)
        position = _CUBE_START + np.array([*rng.uniform(-_CUBE_POSITION_NOISE, _CUBE_POSITION_NOISE, 2), 0.0])
        orientation = _axis_angle_quaternion(np.array([0.0, 0.0, 1.0]), rng.uniform(-_CUBE_YAW_NOISE, _CUBE_YAW_NOISE))
        sim.set_body_pose("object", np.concatenate([position, orientation]))
        sim.set_body_twist("object", np.zeros(6))
        choice = rng.choice(self._goal_choices)
        sign = rng.choice([-1.0, 1.0]) if len(choice) == 1 else (1.0 if choice[1] == "+" else -1.0)
        turn = _axis_angle_quaternion(np.eye(3)["xyz".index(choice[0])], self.goal_angle * sign)
        sim.forward()
        hold = sim.hold_command()
        for _ in range(max(1, round(_SETTLE_TIME / self.dt))):
            sim.step(hold)
        goal = _multiply(turn, sim.body_pose("object")[3:])
        sim.set_body_pose("target", np.concatenate([_CUBE_START + _GOAL_MARKER_OFFSET, goal]))
        sim.forward()

