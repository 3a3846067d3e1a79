"""Message <-> numpy conversions: round trips, mapping by name, and every malformed message rejected with a reason."""

import math

import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Pose, PoseStamped, TwistStamped
from hypothesis import given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from mbrl_ros.nodes.conversions import (
    MessageError,
    command_array,
    command_message,
    image_array,
    image_message,
    joint_state_arrays,
    joint_state_message,
    joint_trajectory_targets,
    pose_array,
    pose_stamped_message,
    seconds_to_stamp,
    stamp_to_seconds,
    twist_array,
    twist_stamped_message,
)

JOINTS = ("a", "b", "c", "d")
finite = st.floats(-1e6, 1e6, allow_nan=False)
any_float = st.floats(allow_nan=True, allow_infinity=True)


def _point(values, seconds, field="positions"):
    nanoseconds = round(seconds * 1e9)
    point = JointTrajectoryPoint(time_from_start=Duration(sec=nanoseconds // 10**9, nanosec=nanoseconds % 10**9))
    setattr(point, field, list(values))
    return point


@given(st.lists(finite, min_size=8, max_size=8), st.permutations(range(4)))
def test_joint_states_are_read_by_name_in_any_order(values, order):
    names = [JOINTS[i] for i in order]
    msg = joint_state_message(names, np.array(values[:4])[order], np.array(values[4:])[order], np.zeros(4),
                              seconds_to_stamp(1.5))
    positions, velocities = joint_state_arrays(msg, JOINTS)
    np.testing.assert_array_equal(positions, values[:4])
    np.testing.assert_array_equal(velocities, values[4:])
    subset, none = joint_state_arrays(msg, ("c", "a"), velocities=False)
    np.testing.assert_array_equal(subset, [values[2], values[0]])
    assert none is None and stamp_to_seconds(msg.header.stamp) == 1.5


@settings(max_examples=200)
@given(
    names=st.lists(st.sampled_from([*JOINTS, "x"]), max_size=6),
    positions=st.lists(any_float, max_size=6),
    velocities=st.lists(any_float, max_size=6),
)
def test_unusable_joint_states_raise_message_errors_and_nothing_else(names, positions, velocities):
    msg = JointState(name=names, position=positions, velocity=velocities)
    usable = (
        len(set(names)) == len(names) and len(positions) == len(velocities) == len(names)
        and set(JOINTS) <= set(names)
        and all(math.isfinite(positions[names.index(j)]) and math.isfinite(velocities[names.index(j)]) for j in JOINTS)
    )
    if usable:
        joint_state_arrays(msg, JOINTS)
    else:
        with pytest.raises(MessageError):
            joint_state_arrays(msg, JOINTS)


@given(st.lists(finite, min_size=3, max_size=3), st.lists(st.floats(-1, 1), min_size=4, max_size=4))
def test_poses_round_trip_with_unit_quaternions(position, quaternion):
    q = np.array(quaternion)
    if np.linalg.norm(q) < 1e-3:
        return
    pose = np.concatenate([position, q / np.linalg.norm(q)])
    msg = pose_stamped_message(pose, seconds_to_stamp(2.0), "world")
    assert msg.header.frame_id == "world"
    np.testing.assert_allclose(pose_array(msg), pose, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pose_array(msg.pose), pose, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("orientation", "position", "reason"), [
    ((0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0), "unit quaternion"),
    ((0.0, 0.0, 0.0, 1.2), (0.0, 0.0, 0.0), "unit quaternion"),
    ((0.0, 0.0, 0.0, 1.0), (math.nan, 0.0, 0.0), "NaN or inf"),
    ((0.0, math.inf, 0.0, 1.0), (0.0, 0.0, 0.0), "NaN or inf"),
])
def test_bad_poses_are_rejected(orientation, position, reason):
    msg = Pose()
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = orientation
    msg.position.x, msg.position.y, msg.position.z = position
    with pytest.raises(MessageError, match=reason):
        pose_array(msg)


@given(st.lists(finite, min_size=6, max_size=6))
def test_twists_round_trip(twist):
    msg = twist_stamped_message(np.array(twist), seconds_to_stamp(0.25), "world")
    assert isinstance(msg, TwistStamped)
    np.testing.assert_array_equal(twist_array(msg), twist)
    bad = TwistStamped()
    bad.twist.angular.z = math.nan
    with pytest.raises(MessageError):
        twist_array(bad)


@given(st.lists(finite, min_size=1, max_size=24))
def test_commands_round_trip(action):
    msg = command_message(np.array(action))
    assert msg.layout.dim[0].label == "actuators" and msg.layout.dim[0].size == len(action)
    np.testing.assert_array_equal(command_array(msg, len(action)), action)


@settings(max_examples=200)
@given(st.lists(any_float, max_size=8))
def test_commands_of_the_wrong_length_or_not_finite_are_rejected(data):
    msg = Float64MultiArray(data=data)
    if len(data) == 5 and all(math.isfinite(v) for v in data):
        assert command_array(msg, 5).shape == (5,)
    else:
        with pytest.raises(MessageError):
            command_array(msg, 5)


def test_joint_trajectories_map_onto_actuators_by_joint_name():
    msg = JointTrajectory(joint_names=["d", "b"], points=[_point([4.0, 2.0], 0.1), _point([40.0, 20.0], 0.3)])
    targets = joint_trajectory_targets(msg, JOINTS)
    assert targets.indices.tolist() == [3, 1]
    np.testing.assert_allclose(targets.times, [0.1, 0.3])
    np.testing.assert_array_equal(targets.values, [[4.0, 2.0], [40.0, 20.0]])
    effort = JointTrajectory(joint_names=["a"], points=[_point([1.5], 0.0, "effort")])
    assert joint_trajectory_targets(effort, JOINTS, field="effort").values.tolist() == [[1.5]]


@settings(max_examples=200)
@given(
    names=st.lists(st.sampled_from([*JOINTS, "elbow", ""]), max_size=5),
    points=st.lists(st.tuples(st.lists(any_float, max_size=5), st.floats(-1.0, 3.0)), max_size=4),
)
def test_unusable_joint_trajectories_raise_message_errors_and_nothing_else(names, points):
    msg = JointTrajectory(joint_names=names, points=[_point(values, t) for values, t in points])
    times = [stamp_to_seconds(p.time_from_start) for p in msg.points]
    usable = (
        names and len(set(names)) == len(names) and set(names) <= set(JOINTS) and points
        and all(len(values) == len(names) and all(map(math.isfinite, values)) for values, _ in points)
        and times[0] >= 0 and all(b > a for a, b in zip(times, times[1:], strict=False))
    )
    if usable:
        assert joint_trajectory_targets(msg, JOINTS).values.shape == (len(points), len(names))
    else:
        with pytest.raises(MessageError):
            joint_trajectory_targets(msg, JOINTS)


def test_images_round_trip_and_bad_images_are_rejected():
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    msg = image_message(rgb, seconds_to_stamp(1.0), "camera")
    assert (msg.encoding, msg.step, msg.height, msg.width) == ("rgb8", 15, 6, 5)
    np.testing.assert_array_equal(image_array(msg), rgb)
    with pytest.raises(MessageError, match="rgb8"):
        image_array(Image(encoding="mono8", height=1, width=1, step=1, data=b"\x00"))
    with pytest.raises(MessageError, match="does not fit"):
        image_array(Image(encoding="rgb8", height=2, width=2, step=6, data=bytes(10)))


def test_stamps_convert_to_seconds_and_back():
    for seconds in (0.0, 0.04, 1234.567890123):
        assert stamp_to_seconds(seconds_to_stamp(seconds)) == pytest.approx(seconds, abs=1e-9)
    assert seconds_to_stamp(2.999999999999).sec == 3
    assert isinstance(pose_stamped_message(np.eye(1, 7, 3)[0], seconds_to_stamp(0.0), ""), PoseStamped)
