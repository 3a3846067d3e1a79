"""The Task interface: what a control problem on a MuJoCo model defines, and what a user implements.

A task owns everything that is not physics: the state layout, the actions (the model's actuators, in model
order, bounded by their ``ctrlrange``), the control period, the episode length, the reward and termination
as batched torch functions of ``(s, a, s')``, the success measure, and the randomised initial state and goal
of each episode. The same functions serve the planners (batched over thousands of imagined transitions),
the simulator and the Gymnasium environments (reporting each step), and the ROS nodes.

To bring your own task, subclass :class:`Task` (or an existing task, to change only its reward) in any
importable module and name it ``package.module:ClassName`` wherever a task name is accepted.
"""

import functools
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import mujoco
import numpy as np
import torch
from torch import Tensor

from mbrl_ros.sim.simulation import actuator_transmissions, load_model
from mbrl_ros.tasks.layout import StateLayout

if TYPE_CHECKING:
    from mbrl_ros.sim.simulation import Simulation

CAMERA_NAME = "mbrl_ros_camera"


@dataclass(frozen=True)
class CameraSpec:
    """A fixed camera added to the model, at ``position`` looking at ``target`` (world, m), ``up`` roughly up."""

    position: tuple[float, float, float]
    target: tuple[float, float, float]
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fovy: float = 45.0  # vertical field of view (degrees)

    def xyaxes(self) -> list[float]:
        """The camera frame's x and y axes in world coordinates (MuJoCo cameras look along their -z)."""
        forward = np.subtract(self.target, self.position)
        forward = forward / np.linalg.norm(forward)
        right = np.cross(forward, self.up)
        right = right / np.linalg.norm(right)
        return [*right, *np.cross(right, forward)]


class Task(ABC):
    """A control problem on a MuJoCo model.

    Subclasses set the class attributes and implement :meth:`reward`, :meth:`is_success` and :meth:`reset`;
    :meth:`terminated` defaults to never. Keyword arguments of ``__init__`` (e.g. ``episode_length``) are
    task options that the registry, the Gymnasium environments and the bridge node pass through.

    Attributes:
        name: registry name.
        mjcf: the model, a path or ``package:relative/path.xml``.
        dt: control period (s).
        episode_length: control steps per episode.
        layout: the state vector's fields.
        bodies: body key (as the layout and the ROS topics name it, e.g. ``"object"``) -> MJCF body name.
        goal_bodies: MJCF bodies the task places itself (goal markers): their joints are removed and they
            become mocap bodies, so they stay where :meth:`reset` puts them.
        camera: an existing camera's name, a :class:`CameraSpec` to add (named :data:`CAMERA_NAME`), or None
            for MuJoCo's free camera.
        success_hold_steps: an episode succeeds once :meth:`is_success` held for this many consecutive steps.
    """

    name: ClassVar[str]
    mjcf: ClassVar[str]
    dt: float
    episode_length: int
    layout: StateLayout
    bodies: Mapping[str, str] = {}
    goal_bodies: tuple[str, ...] = ()
    camera: str | CameraSpec | None = None
    success_hold_steps: int = 1

    def __init__(self, episode_length: int | None = None) -> None:
        if episode_length is not None:
            if int(episode_length) < 1:
                raise ValueError(f"episode_length must be at least 1, got {episode_length}")
            self.episode_length = int(episode_length)

    # ----------------------------------------------------------------------------------------------- model
    def edit_model(self, spec: mujoco.MjSpec) -> None:
        """Changes the MJCF before compilation: goal bodies become mocap bodies, the camera is added, and
        unnamed actuators take the name of the joint they drive.

        Override to change more (call ``super().edit_model(spec)``).
        """
        for actuator in spec.actuators:
            if not actuator.name and actuator.trntype == mujoco.mjtTrn.mjTRN_JOINT:
                actuator.name = actuator.target
        for body_name in self.goal_bodies:
            body = spec.body(body_name)
            if body is None:
                raise KeyError(f"task {self.name}: no body named {body_name!r} in {self.mjcf}")
            for joint in list(body.joints):
                spec.delete(joint)
            body.mocap = True
        if isinstance(self.camera, CameraSpec):
            camera = spec.worldbody.add_camera(name=CAMERA_NAME, pos=list(self.camera.position), fovy=self.camera.fovy)
            camera.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
            camera.alt.xyaxes = self.camera.xyaxes()

    @functools.cached_property
    def model(self) -> mujoco.MjModel:
        """The compiled model (after :meth:`edit_model`), built once per task object."""
        return load_model(self.mjcf, self.edit_model)

    @property
    def camera_name(self) -> str | int:
        """The camera images are taken from (-1: MuJoCo's free camera)."""
        if isinstance(self.camera, CameraSpec):
            return CAMERA_NAME
        return self.camera if self.camera is not None else -1

    @property
    def state_dim(self) -> int:
        return self.layout.size

    @property
    def action_dim(self) -> int:
        return self.model.nu

    @property
    def actuator_names(self) -> tuple[str, ...]:
        """Actuator order: the order of every action vector and of ``<controller>/commands``."""
        return tuple(self.model.actuator(a).name for a in range(self.model.nu))

    @property
    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high), each (A,): the actuators' control ranges (units of each actuator's control)."""
        limited = self.model.actuator_ctrllimited.astype(bool)
        ranges = self.model.actuator_ctrlrange
        return np.where(limited, ranges[:, 0], -np.inf), np.where(limited, ranges[:, 1], np.inf)

    def hold_command(self, joint_positions: Mapping[str, float]) -> np.ndarray:
        """(A,) the command that holds a measured posture: each position servo aims at its joint's position,
        other actuators get 0; within the action bounds.

        Args:
            joint_positions: measured position (rad or m) of at least every position-servoed joint, by name.
        """
        joints, servo = actuator_transmissions(self.model)
        command = np.zeros(self.action_dim)
        for actuator in np.flatnonzero(servo):
            command[actuator] = joint_positions[joints[actuator]]
        low, high = self.action_bounds
        return np.clip(command, low, high)

    # ------------------------------------------------------------------------------------ batched functions
    @abstractmethod
    def reward(self, state: Tensor, action: Tensor, next_state: Tensor) -> Tensor:
        """Reward of transitions: state (N, S), action (N, A), next_state (N, S) -> (N,) float tensor."""

    def terminated(self, next_state: Tensor) -> Tensor:
        """Whether each next_state (N, S) ends the episode -> (N,) bool tensor. Default: never."""
        return torch.zeros(next_state.shape[:-1], dtype=torch.bool, device=next_state.device)

    @abstractmethod
    def is_success(self, next_state: Tensor) -> Tensor:
        """Whether each next_state (N, S) meets the task's goal -> (N,) bool tensor."""

    def learnable(self, states: np.ndarray, next_states: np.ndarray) -> np.ndarray:
        """Which transitions, states (N, S) to next_states (N, S), a dynamics model trains on -> (N,) bool.

        A task leaves out what a smooth model should not fit, such as a cart stopped by the end of its rail: a few
        such jumps dominate a squared loss and spoil the model everywhere else. They stay in the replay buffer.
        Default: all of them.
        """
        return np.ones(len(states), dtype=bool)

    # ----------------------------------------------------------------------------------------------- episodes
    @abstractmethod
    def reset(self, sim: "Simulation", rng: np.random.Generator) -> None:
        """Puts ``sim`` (already reset to the model's reference configuration) in a random initial state.

        Draws the initial state and the goal from ``rng`` only, so equal seeds give equal episodes. May step
        the simulation (e.g. to let an object settle) before the episode starts.
        """
