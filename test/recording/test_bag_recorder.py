"""BagRecorder: topics recorded off real DDS, read back with rosbags' own reader and with rclpy."""

import hashlib

import pytest
import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from mbrl_ros.data.bags import bag_topics, message_typestore, read_bag
from mbrl_ros.msg import ModelUpdate
from mbrl_ros.nodes.bag_recorder import BagRecorder

from support import detach_node, wait_for

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@pytest.fixture
def talker(ros_executor):
    node = rclpy.create_node("talker", context=ros_executor.context)
    ros_executor.add_node(node)
    return node


def test_recorded_topics_come_back_with_their_counts_and_contents(ros_executor, talker, tmp_path):
    weights = bytes(range(256)) * 1000
    latched = talker.create_publisher(ModelUpdate, "/model_update", LATCHED)
    digest = hashlib.sha256(weights).hexdigest()
    latched.publish(ModelUpdate(version=4, kind="ensemble", weights=weights, sha256=digest))
    states = talker.create_publisher(JointState, "/joint_states", 10)
    commands = talker.create_publisher(Float64MultiArray, "/hand/commands", qos_profile_sensor_data)

    recorder = BagRecorder(str(tmp_path / "run.bag"), ["/joint_states", "/hand/commands", "/model_update"],
                           context=ros_executor.context)
    ros_executor.add_node(recorder)
    assert wait_for(lambda: recorder.counts.get("/model_update") == 1, 10), "latched message not recorded"
    assert wait_for(lambda: states.get_subscription_count() and commands.get_subscription_count(), 10)
    for k in range(40):
        states.publish(JointState(name=["j0", "j1"], position=[0.01 * k, -0.01 * k]))
        commands.publish(Float64MultiArray(data=[float(k)]))
    assert wait_for(lambda: recorder.counts.get("/joint_states") == 40 and recorder.counts.get("/hand/commands"), 10)
    detach_node(ros_executor, recorder)

    topics = bag_topics(tmp_path / "run.bag")
    assert topics["/joint_states"] == ("sensor_msgs/msg/JointState", 40)
    assert topics["/model_update"] == ("mbrl_ros/msg/ModelUpdate", 1)
    assert 0 < topics["/hand/commands"][1] <= 40  # best effort: may drop, never invent
    messages = list(read_bag(tmp_path / "run.bag"))
    positions = [deserialize_message(m.data, JointState).position[0] for m in messages if m.topic == "/joint_states"]
    assert positions == pytest.approx([0.01 * k for k in range(40)])
    store = message_typestore()  # rosbags' own (strict) decoder accepts the bytes as taken off DDS
    update = store.deserialize_cdr(next(m.data for m in messages if m.topic == "/model_update"),
                                   "mbrl_ros/msg/ModelUpdate")
    assert update.version == 4 and update.weights.tobytes() == weights


def test_a_recorder_without_an_output_is_refused(ros_executor):
    with pytest.raises(ValueError, match="output"):
        BagRecorder(None, ["/x"], context=ros_executor.context)
