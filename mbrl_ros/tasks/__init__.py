"""Tasks: state layouts, action bounds, control periods, batched rewards/terminations and success measures.

``make_task("shadow_hand_cube")`` builds a registered task; ``make_task("my_pkg.my_module:MyTask")`` imports
a user's :class:`Task` subclass instead, so a new reward needs no change to this package.
"""

import importlib
from typing import Any

import mbrl_ros.sim  # noqa: F401  (chooses the headless OpenGL backend before mujoco is first imported)
from mbrl_ros.tasks.base import CAMERA_NAME, CameraSpec, Task
from mbrl_ros.tasks.cartpole import CartpoleSwingUp
from mbrl_ros.tasks.half_cheetah import HalfCheetah
from mbrl_ros.tasks.layout import BodyPose, BodyTwist, JointPositions, JointVelocities, StateLayout, StateSource
from mbrl_ros.tasks.posture import JointPostureTask
from mbrl_ros.tasks.pusher import Pusher
from mbrl_ros.tasks.reacher import Reacher
from mbrl_ros.tasks.shadow_hand_cube import ShadowHandCube

TASKS: dict[str, type[Task]] = {
    task.name: task for task in (CartpoleSwingUp, HalfCheetah, Reacher, Pusher, ShadowHandCube)
}
# Tasks of real robots only (no simulation model), configured by their options.
ROBOT_TASKS: dict[str, type[Task]] = {JointPostureTask.name: JointPostureTask}


def task_class(reference: str) -> type[Task]:
    """The task class a name (see :data:`TASKS`) or an import path ``package.module:ClassName`` refers to.

    Raises:
        ValueError: unknown name, a module or class that cannot be imported, or a class that is not a Task.
    """
    if ":" not in reference:
        known = {**TASKS, **ROBOT_TASKS}
        if reference not in known:
            raise ValueError(f"unknown task {reference!r}: use one of {sorted(known)} or 'package.module:Class'")
        return known[reference]
    module_name, _, class_name = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"task {reference!r}: cannot import module {module_name!r} ({error})") from error
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ValueError(f"task {reference!r}: {class_name!r} in {module_name!r} is not a mbrl_ros.tasks.Task subclass")
    return cls


def make_task(reference: str, **options: Any) -> Task:
    """Builds the task ``reference`` names (see :func:`task_class`) with its options (e.g. ``episode_length``)."""
    cls = task_class(reference)
    try:
        return cls(**options)
    except TypeError as error:
        raise ValueError(f"task {reference!r}: bad options {options} ({error})") from error


__all__ = [
    "CAMERA_NAME",
    "TASKS",
    "BodyPose",
    "BodyTwist",
    "CameraSpec",
    "CartpoleSwingUp",
    "HalfCheetah",
    "JointPostureTask",
    "JointPositions",
    "JointVelocities",
    "Pusher",
    "ROBOT_TASKS",
    "Reacher",
    "ShadowHandCube",
    "StateLayout",
    "StateSource",
    "Task",
    "make_task",
    "task_class",
]
