"""Bags: messages written through BagWriter come back intact, through rclpy and through rosbags' own reader."""

import hashlib

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from mbrl_ros.data.bags import BagError, BagWriter, bag_topics, read_bag
from mbrl_ros.msg import ModelUpdate, Transition


def joint_state(k: int) -> JointState:
    message = JointState(name=["a", "b"], position=[0.1 * k, -0.2 * k], velocity=[1.0, float(k)])
    message.header.stamp.sec, message.header.stamp.nanosec = k, 500
    return message


@pytest.fixture
def recorded(tmp_path):
    weights = np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    messages = (
        [("/joint_states", "sensor_msgs/msg/JointState", joint_state(k)) for k in range(30)]
        + [("/hand/commands", "std_msgs/msg/Float64MultiArray", Float64MultiArray(data=[k, -k])) for k in range(20)]
        + [("/transitions", "mbrl_ros/msg/Transition",
            Transition(robot_id="r", state=[1.0, 2.0], action=[0.5], next_state=[1.5, 2.5], reward=1.0, dt=0.02))]
        + [("/model_update", "mbrl_ros/msg/ModelUpdate",
            ModelUpdate(version=3, kind="ensemble", weights=weights, sha256=hashlib.sha256(weights).hexdigest()))]
    )
    path = tmp_path / "run.bag"
    with BagWriter(path) as writer:
        for stamp, (topic, msgtype, message) in enumerate(messages):
            writer.write(topic, msgtype, 1_000_000 * stamp, serialize_message(message))
    return path, messages


def test_the_bag_lists_every_topic_with_its_type_and_count(recorded):
    path, _ = recorded
    assert list(path.glob("*.mcap")), "not MCAP storage"
    assert bag_topics(path) == {
        "/joint_states": ("sensor_msgs/msg/JointState", 30),
        "/hand/commands": ("std_msgs/msg/Float64MultiArray", 20),
        "/transitions": ("mbrl_ros/msg/Transition", 1),
        "/model_update": ("mbrl_ros/msg/ModelUpdate", 1),
    }


def test_messages_come_back_intact_through_rclpy(recorded):
    path, messages = recorded
    classes = {"sensor_msgs/msg/JointState": JointState, "std_msgs/msg/Float64MultiArray": Float64MultiArray,
               "mbrl_ros/msg/Transition": Transition, "mbrl_ros/msg/ModelUpdate": ModelUpdate}
    read = list(read_bag(path))
    assert [m.stamp_ns for m in read] == sorted(m.stamp_ns for m in read)
    assert len(read) == len(messages)
    for bag_message, (topic, msgtype, original) in zip(read, messages, strict=True):
        assert (bag_message.topic, bag_message.msgtype) == (topic, msgtype)
        assert deserialize_message(bag_message.data, classes[msgtype]) == original


def test_the_recorded_schemas_describe_the_ros_types(recorded):
    """A message built by rosbags from the schema text in the bag alone decodes in rclpy to the same values."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    path, _ = recorded
    with Reader(path) as reader:
        schemas = {c.msgtype: c.msgdef.data for c in reader.connections}
    store = get_typestore(Stores.EMPTY)
    for msgtype, schema in schemas.items():
        store.register(get_types_from_msg(schema, msgtype))
    transition_class = store.types["mbrl_ros/msg/Transition"]
    header_class, time_class = store.types["std_msgs/msg/Header"], store.types["builtin_interfaces/msg/Time"]
    built = transition_class(
        header=header_class(stamp=time_class(sec=3, nanosec=7), frame_id="f"), robot_id="hand_1",
        state=np.array([1.0, 2.0]), action=np.array([-0.5]), next_state=np.array([1.5, 2.5]), reward=2.0,
        done=True, dt=0.05,
    )
    decoded = deserialize_message(bytes(store.serialize_cdr(built, "mbrl_ros/msg/Transition")), Transition)
    assert (decoded.header.stamp.sec, decoded.header.stamp.nanosec, decoded.header.frame_id) == (3, 7, "f")
    assert decoded.robot_id == "hand_1" and list(decoded.state) == [1.0, 2.0] and list(decoded.action) == [-0.5]
    assert (decoded.reward, decoded.done, decoded.dt) == (2.0, True, 0.05)
    joint_class = store.types["sensor_msgs/msg/JointState"]
    built = joint_class(header=header_class(stamp=time_class(sec=1, nanosec=2), frame_id=""), name=["a"],
                        position=np.array([0.5]), velocity=np.array([]), effort=np.array([]))
    decoded = deserialize_message(bytes(store.serialize_cdr(built, "sensor_msgs/msg/JointState")), JointState)
    assert decoded.name == ["a"] and list(decoded.position) == [0.5]


def test_a_truncated_bag_is_reported_with_how_far_reading_got(recorded):
    path, _ = recorded
    storage = next(path.glob("*.mcap"))
    storage.write_bytes(storage.read_bytes()[: storage.stat().st_size // 2])
    with pytest.raises(BagError, match="bag"):
        list(read_bag(path))


@pytest.mark.parametrize("make_bad", [lambda p: None, lambda p: p.mkdir()])
def test_a_missing_or_non_bag_directory_is_reported(tmp_path, make_bad):
    make_bad(tmp_path / "nothing")
    with pytest.raises(BagError, match="not a rosbag2 bag"):
        list(read_bag(tmp_path / "nothing"))


def test_writing_a_topic_with_two_types_is_refused(tmp_path):
    with BagWriter(tmp_path / "bag") as writer:
        writer.write("/x", "std_msgs/msg/Float64MultiArray", 0, serialize_message(Float64MultiArray(data=[1.0])))
        with pytest.raises(ValueError, match="carries"):
            writer.write("/x", "sensor_msgs/msg/JointState", 1, serialize_message(JointState()))
        with pytest.raises(ValueError, match="no definition"):
            writer.write("/y", "made_up/msg/Thing", 2, b"")
