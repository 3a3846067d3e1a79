"""A task's state vector assembled from a robot's ROS topics, step by step (the lockstep handshake's reader).

The bridge (and a hardware driver in its place) publishes, for every control step, ``/joint_states`` and
one ``<bridge>/<body>_pose`` / ``<bridge>/<body>_twist`` per body key the task's layout reads, all with the
same ``header.stamp``. :class:`TopicStateAssembler` keeps the newest message of each and yields the state
once every part of one stamp has arrived (parts from different sources may differ by ``max_skew``).
"""

from collections.abc import Sequence

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from sensor_msgs.msg import JointState

from mbrl_ros.nodes.conversions import joint_state_arrays, pose_array, stamp_to_seconds, twist_array
from mbrl_ros.tasks.layout import StateLayout

JOINT_STATES_TOPIC = "/joint_states"
DEFAULT_BRIDGE_NAME = "mujoco_bridge"


def pose_topic(body: str, bridge: str = DEFAULT_BRIDGE_NAME) -> str:
    """The topic of a body key's pose, e.g. ``/mujoco_bridge/object_pose``."""
    return f"/{bridge.strip('/')}/{body}_pose"


def twist_topic(body: str, bridge: str = DEFAULT_BRIDGE_NAME) -> str:
    """The topic of a body key's twist, e.g. ``/mujoco_bridge/object_twist``."""
    return f"/{bridge.strip('/')}/{body}_twist"


class TopicStateAssembler:
    """Builds state vectors of a :class:`~mbrl_ros.tasks.StateLayout` from the latest state messages.

    Feed it every message (:meth:`add_joint_state`, :meth:`add_pose`, :meth:`add_twist`; each raises
    :class:`~mbrl_ros.nodes.conversions.MessageError` for a message it cannot use and keeps the previous
    one) and call :meth:`complete` for the newest complete state.
    """

    def __init__(self, layout: StateLayout, max_skew: float = 0.0) -> None:
        """
        Args:
            layout: the task's state layout.
            max_skew: how far apart (s) the stamps of one state's parts may be; 0 for the bridge, whose parts
                share one stamp.
        """
        self.layout = layout
        self.max_skew = max_skew
        self._joints: tuple[float, dict[str, float], dict[str, float]] | None = None
        self._poses: dict[str, tuple[float, np.ndarray]] = {}
        self._twists: dict[str, tuple[float, np.ndarray]] = {}
        self._last_complete: float | None = None
        # The layout's properties walk its fields: read them once, not per message.
        self._joint_names = layout.joints
        self._parts = ((self._poses, layout.pose_bodies), (self._twists, layout.twist_bodies))

    def add_joint_state(self, msg: JointState) -> None:
        positions, velocities = joint_state_arrays(msg, self._joint_names)
        self._joints = (
            stamp_to_seconds(msg.header.stamp),
            dict(zip(self._joint_names, positions, strict=True)),
            dict(zip(self._joint_names, velocities, strict=True)),
        )

    def add_pose(self, body: str, msg: PoseStamped) -> None:
        self._poses[body] = (stamp_to_seconds(msg.header.stamp), pose_array(msg))

    def add_twist(self, body: str, msg: TwistStamped) -> None:
        self._twists[body] = (stamp_to_seconds(msg.header.stamp), twist_array(msg))

    # StateSource, over the stored messages
    def joint_positions(self, names: Sequence[str]) -> np.ndarray:
        return np.array([self._joints[1][name] for name in names])

    def joint_velocities(self, names: Sequence[str]) -> np.ndarray:
        return np.array([self._joints[2][name] for name in names])

    def body_pose(self, body: str) -> np.ndarray:
        return self._poses[body][1]

    def body_twist(self, body: str) -> np.ndarray:
        return self._twists[body][1]

    def _stamps(self) -> list[float] | None:
        if self._joints is None:
            return None
        stamps = [self._joints[0]]
        for parts, bodies in self._parts:
            for body in bodies:
                if body not in parts:
                    return None
                stamps.append(parts[body][0])
        return stamps

    def complete(self, only_new: bool = True) -> tuple[float, np.ndarray] | None:
        """The newest state whose parts all arrived, as (stamp in s, state (S,)); else None.

        Args:
            only_new: return each complete state once (None until a newer one is complete).
        """
        stamps = self._stamps()
        if stamps is None or max(stamps) - min(stamps) > self.max_skew:
            return None
        stamp = max(stamps)
        if only_new and self._last_complete is not None and stamp <= self._last_complete:
            return None
        self._last_complete = stamp
        return stamp, self.layout.assemble(self)
