"""Named state layouts: which quantities a task's state vector holds, in which order, and where they come from.

A state vector is the concatenation of its fields. Each field reads from one source that both the
simulator and a real robot provide over ROS:

=================  ===================================  ==============================================
field              simulator                            ROS 2
=================  ===================================  ==============================================
JointPositions     hinge/slide joint positions          ``/joint_states`` ``position``, by joint name
JointVelocities    hinge/slide joint velocities         ``/joint_states`` ``velocity``, by joint name
BodyPose           a body's world pose                  ``<bridge>/<body>_pose`` (PoseStamped)
BodyTwist          a body's world twist                 ``<bridge>/<body>_twist`` (TwistStamped)
=================  ===================================  ==============================================

``body`` is a key such as ``"object"`` or ``"goal"``, which the task maps to a body of its MJCF. Pose
components are named ``x y z qw qx qy qz`` (quaternion scalar first), twist components
``vx vy vz wx wy wz`` (world frame).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

POSE_COMPONENTS = ("x", "y", "z", "qw", "qx", "qy", "qz")
POSITION = ("x", "y", "z")
ORIENTATION = ("qw", "qx", "qy", "qz")
TWIST_COMPONENTS = ("vx", "vy", "vz", "wx", "wy", "wz")
LINEAR_VELOCITY = ("vx", "vy", "vz")
ANGULAR_VELOCITY = ("wx", "wy", "wz")


@dataclass(frozen=True)
class _Joints:
    """A quantity of named joints, in the order given."""

    name: str
    joints: tuple[str, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return self.joints


class JointPositions(_Joints):
    """Positions (rad or m) of named joints, in the order given."""


class JointVelocities(_Joints):
    """Velocities (rad/s or m/s) of named joints, in the order given."""


@dataclass(frozen=True)
class _BodyComponents:
    """Components of a body's world pose or twist: a subset of ``ALL``, in the order given."""

    ALL: ClassVar[tuple[str, ...]] = ()

    name: str
    body: str
    components: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_components(self.components, self.ALL, self.name)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.components

    @property
    def indices(self) -> list[int]:
        """Where each component sits in ``ALL``."""
        return [self.ALL.index(component) for component in self.components]


@dataclass(frozen=True)
class BodyPose(_BodyComponents):
    """Components of a body's world pose (subset of :data:`POSE_COMPONENTS`, in the order given)."""

    ALL: ClassVar[tuple[str, ...]] = POSE_COMPONENTS
    components: tuple[str, ...] = POSE_COMPONENTS


@dataclass(frozen=True)
class BodyTwist(_BodyComponents):
    """Components of a body's world twist (subset of :data:`TWIST_COMPONENTS`, in the order given)."""

    ALL: ClassVar[tuple[str, ...]] = TWIST_COMPONENTS
    components: tuple[str, ...] = TWIST_COMPONENTS


StateField = JointPositions | JointVelocities | BodyPose | BodyTwist


def _check_components(components: Sequence[str], allowed: Sequence[str], field: str) -> None:
    unknown = [component for component in components if component not in allowed]
    if unknown or not components:
        raise ValueError(f"state field {field!r}: components must be a non-empty subset of {allowed}, got {components}")


class StateSource(Protocol):
    """Anything a state vector can be read from: a simulator, or the latest messages of a robot's topics."""

    def joint_positions(self, names: Sequence[str]) -> np.ndarray: ...

    def joint_velocities(self, names: Sequence[str]) -> np.ndarray: ...

    def body_pose(self, body: str) -> np.ndarray: ...

    def body_twist(self, body: str) -> np.ndarray: ...


class StateLayout:
    """The ordered fields of a state vector, with the slice each occupies."""

    def __init__(self, fields: Sequence[StateField]) -> None:
        names = [field.name for field in fields]
        if len(set(names)) != len(names):
            raise ValueError(f"state field names must be unique: {names}")
        self.fields: tuple[StateField, ...] = tuple(fields)
        self.slices: dict[str, slice] = {}
        start = 0
        for field in self.fields:
            size = len(field.labels)
            self.slices[field.name] = slice(start, start + size)
            start += size
        self.size = start

    def __getitem__(self, name: str) -> slice:
        """The slice of field ``name`` in a state vector."""
        return self.slices[name]

    @property
    def labels(self) -> list[str]:
        """One ``field/component`` label per state dimension (for CSV headers and plots)."""
        return [f"{field.name}/{label}" for field in self.fields for label in field.labels]

    @property
    def joints(self) -> tuple[str, ...]:
        """Every joint the state reads (positions or velocities), in order of first appearance."""
        names: dict[str, None] = {}
        for field in self.fields:
            if isinstance(field, JointPositions | JointVelocities):
                names.update(dict.fromkeys(field.joints))
        return tuple(names)

    @property
    def pose_bodies(self) -> tuple[str, ...]:
        """Body keys whose poses the state reads."""
        return tuple(dict.fromkeys(field.body for field in self.fields if isinstance(field, BodyPose)))

    @property
    def twist_bodies(self) -> tuple[str, ...]:
        """Body keys whose twists the state reads."""
        return tuple(dict.fromkeys(field.body for field in self.fields if isinstance(field, BodyTwist)))

    def assemble(self, source: StateSource) -> np.ndarray:
        """The state vector (S,) float64 read from ``source``."""
        poses = {body: source.body_pose(body) for body in self.pose_bodies}
        twists = {body: source.body_twist(body) for body in self.twist_bodies}
        parts = []
        for field in self.fields:
            if isinstance(field, JointPositions):
                parts.append(source.joint_positions(field.joints))
            elif isinstance(field, JointVelocities):
                parts.append(source.joint_velocities(field.joints))
            elif isinstance(field, BodyPose):
                parts.append(poses[field.body][field.indices])
            else:
                parts.append(twists[field.body][field.indices])
        return np.concatenate(parts).astype(np.float64)
