"""ROS 2 message <-> numpy conversions shared by every node (bridge, controller, learner).

Every ``*_array``/``*_targets`` reader validates what it reads and raises :class:`MessageError` with the
reason (wrong length, NaN/inf, unknown or duplicate names, ...) for anything it cannot use; it never raises
anything else for any message of the right type. Writers take numpy arrays and return ready messages.

Vector conventions are those of :mod:`mbrl_ros.sim.simulation`: a pose is ``[x, y, z, qw, qx, qy, qz]``,
a twist ``[vx, vy, vz, wx, wy, wz]``, an action one value per actuator in the task's actuator order.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseStamped, Twist, TwistStamped
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory

QUATERNION_NORM_TOLERANCE = 0.01  # orientations whose norm is further than this from 1 are rejected


class MessageError(ValueError):
    """A message that cannot be used; the text says why."""


# ----------------------------------------------------------------------------------------------------- time
def stamp_to_seconds(stamp: Time | Duration) -> float:
    """A ``builtin_interfaces`` Time or Duration in seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(seconds: float) -> Time:
    """Seconds (>= 0) as a ``builtin_interfaces/Time``, rounded to the nanosecond."""
    nanoseconds = round(seconds * 1e9)
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def _finite(values: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        bad = np.flatnonzero(~np.isfinite(values)).tolist()
        raise MessageError(f"{what} holds NaN or inf (at indices {bad[:10]})")
    return values


def _unique_names(names: Sequence[str], what: str) -> None:
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise MessageError(f"{what} names joints more than once: {duplicates}")


# ------------------------------------------------------------------------------------------------ JointState
def joint_state_arrays(
    msg: JointState, joint_names: Sequence[str], velocities: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Positions and velocities (J,) of ``joint_names``, in that order, from a JointState naming them.

    The message may name its joints in any order and name others too.

    Args:
        msg: the message.
        joint_names: the joints wanted.
        velocities: also read velocities (the message must carry one per name); else None is returned.
    Raises:
        MessageError: array lengths differ from the names', a wanted joint is missing, a name repeats, or a
            wanted value is NaN/inf.
    """
    names = list(msg.name)
    _unique_names(names, "JointState")
    if len(msg.position) != len(names):
        raise MessageError(f"JointState has {len(names)} names but {len(msg.position)} positions")
    if velocities and len(msg.velocity) != len(names):
        raise MessageError(f"JointState has {len(names)} names but {len(msg.velocity)} velocities")
    index = {name: i for i, name in enumerate(names)}
    missing = [name for name in joint_names if name not in index]
    if missing:
        raise MessageError(f"JointState lacks joints {missing}")
    rows = [index[name] for name in joint_names]
    positions = _finite(np.asarray(msg.position, dtype=np.float64)[rows], "JointState position")
    if not velocities:
        return positions, None
    return positions, _finite(np.asarray(msg.velocity, dtype=np.float64)[rows], "JointState velocity")


def joint_state_message(
    names: Sequence[str], positions: np.ndarray, velocities: np.ndarray, efforts: np.ndarray, stamp: Time
) -> JointState:
    """A JointState (the ``joint_state_broadcaster`` layout: one position, velocity and effort per name)."""
    msg = JointState(name=list(names))
    msg.header.stamp = stamp
    msg.position = np.asarray(positions, dtype=np.float64)
    msg.velocity = np.asarray(velocities, dtype=np.float64)
    msg.effort = np.asarray(efforts, dtype=np.float64)
    return msg


# ---------------------------------------------------------------------------------------------- Pose, Twist
def pose_array(msg: PoseStamped | Pose) -> np.ndarray:
    """``[x, y, z, qw, qx, qy, qz]`` (7,) from a Pose(Stamped); the quaternion is renormalised.

    Raises:
        MessageError: NaN/inf, or an orientation whose norm is not 1 within 0.01 (e.g. all zeros).
    """
    pose = msg.pose if isinstance(msg, PoseStamped) else msg
    p, q = pose.position, pose.orientation
    vector = _finite(np.array([p.x, p.y, p.z, q.w, q.x, q.y, q.z], dtype=np.float64), "Pose")
    norm = float(np.linalg.norm(vector[3:]))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise MessageError(f"Pose orientation is not a unit quaternion (norm {norm:.4g})")
    vector[3:] /= norm
    return vector


def pose_stamped_message(pose: np.ndarray, stamp: Time, frame_id: str) -> PoseStamped:
    """A PoseStamped from ``[x, y, z, qw, qx, qy, qz]``."""
    x, y, z, qw, qx, qy, qz = (float(v) for v in pose)
    msg = PoseStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = x, y, z
    msg.pose.orientation.w, msg.pose.orientation.x = qw, qx
    msg.pose.orientation.y, msg.pose.orientation.z = qy, qz
    return msg


def twist_array(msg: TwistStamped | Twist) -> np.ndarray:
    """``[vx, vy, vz, wx, wy, wz]`` (6,) from a Twist(Stamped). Raises MessageError on NaN/inf."""
    twist = msg.twist if isinstance(msg, TwistStamped) else msg
    v, w = twist.linear, twist.angular
    return _finite(np.array([v.x, v.y, v.z, w.x, w.y, w.z], dtype=np.float64), "Twist")


def twist_stamped_message(twist: np.ndarray, stamp: Time, frame_id: str) -> TwistStamped:
    """A TwistStamped from ``[vx, vy, vz, wx, wy, wz]``."""
    vx, vy, vz, wx, wy, wz = (float(v) for v in twist)
    msg = TwistStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = vx, vy, vz
    msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = wx, wy, wz
    return msg


# ---------------------------------------------------------------------------------- Float64MultiArray actions
def command_array(msg: Float64MultiArray, size: int) -> np.ndarray:
    """The action (size,) a ``forward_command_controller``-style command carries (its layout is ignored).

    Raises:
        MessageError: not exactly ``size`` values, or NaN/inf.
    """
    if len(msg.data) != size:
        raise MessageError(f"command has {len(msg.data)} values, expected {size} (one per actuator)")
    return _finite(np.asarray(msg.data, dtype=np.float64), "command")


def command_message(action: np.ndarray) -> Float64MultiArray:
    """A Float64MultiArray holding ``action`` (A,), with one layout dimension labelled ``actuators``."""
    action = np.asarray(action, dtype=np.float64)
    msg = Float64MultiArray(data=action)
    msg.layout.dim = [MultiArrayDimension(label="actuators", size=action.size, stride=action.size)]
    return msg


# ------------------------------------------------------------------------------------------- JointTrajectory
@dataclass(frozen=True)
class TrajectoryTargets:
    """A validated JointTrajectory mapped onto actuators: ``values[p, j]`` for actuator ``indices[j]``."""

    indices: np.ndarray  # (J,) actuator indices, in the message's joint order
    times: np.ndarray  # (P,) strictly increasing times from the trajectory's start (s)
    values: np.ndarray  # (P, J) targets (the points' positions or efforts)


def joint_trajectory_targets(
    msg: JointTrajectory, command_names: Sequence[str], field: str = "positions"
) -> TrajectoryTargets:
    """Maps a JointTrajectory onto actuators by joint name.

    Args:
        msg: the trajectory; it may name a subset of the actuated joints, in any order.
        command_names: per actuator, the joint name a trajectory uses for it (actuator order).
        field: which point field holds the targets: ``positions`` (position actuators) or ``effort``.
    Raises:
        MessageError: no joints or no points, unknown or repeated joint names, a point whose ``field``
            length differs from the number of joints, NaN/inf, or times that are negative or not
            strictly increasing.
    """
    names = list(msg.joint_names)
    if not names:
        raise MessageError("JointTrajectory names no joints")
    _unique_names(names, "JointTrajectory")
    index = {name: i for i, name in enumerate(command_names)}
    unknown = [name for name in names if name not in index]
    if unknown:
        raise MessageError(f"JointTrajectory names unknown joints {unknown}; known: {list(command_names)}")
    if not msg.points:
        raise MessageError("JointTrajectory has no points")
    values, times = [], []
    for number, point in enumerate(msg.points):
        row = getattr(point, field)
        if len(row) != len(names):
            raise MessageError(f"JointTrajectory point {number} has {len(row)} {field} for {len(names)} joints")
        values.append(_finite(np.asarray(row, dtype=np.float64), f"JointTrajectory point {number} {field}"))
        times.append(stamp_to_seconds(point.time_from_start))
    times_array = np.asarray(times)
    if not all(math.isfinite(t) for t in times) or times_array[0] < 0 or np.any(np.diff(times_array) <= 0):
        raise MessageError(f"JointTrajectory times_from_start must be >= 0 and strictly increasing, got {times}")
    return TrajectoryTargets(np.array([index[name] for name in names]), times_array, np.stack(values))


# ------------------------------------------------------------------------------------------------------ Image
def image_message(rgb: np.ndarray, stamp: Time, frame_id: str) -> Image:
    """A ``rgb8`` Image from an (H, W, 3) uint8 array."""
    height, width, _ = rgb.shape
    msg = Image(height=height, width=width, encoding="rgb8", is_bigendian=0, step=3 * width)
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.data = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    return msg


def image_array(msg: Image) -> np.ndarray:
    """(H, W, 3) uint8 from an ``rgb8`` Image. Raises MessageError on another encoding or a size mismatch."""
    if msg.encoding != "rgb8":
        raise MessageError(f"image encoding {msg.encoding!r} is not rgb8")
    if msg.step < 3 * msg.width or len(msg.data) != msg.step * msg.height:
        raise MessageError(f"image data ({len(msg.data)} bytes, step {msg.step}) does not fit {msg.width}x{msg.height}")
    rows = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.step)
    return rows[:, : 3 * msg.width].reshape(msg.height, msg.width, 3).copy()


def diagnostic_array(stamp: Time, level: bytes, name: str, message: str, hardware_id: str,
                     values: dict[str, object]) -> DiagnosticArray:
    """One ``/diagnostics`` status (``level``: a DiagnosticStatus constant), its values as strings."""
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                              values=[KeyValue(key=key, value=str(value)) for key, value in values.items()])
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
