"""The generic joint-posture task and the Allegro hand config that uses it, without code or MJCF."""

import math

import numpy as np
import pytest
import rclpy
import torch
import yaml
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from mbrl_ros.nodes.mpc_controller import MpcController
from mbrl_ros.resources import config_path
from mbrl_ros.tasks import JointPostureTask, make_task

from support import detach_node, wait_for

QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
ALLEGRO_JOINTS = [f"ah_joint{finger}{joint}" for finger in range(4) for joint in range(4)]


def two_joint_task() -> JointPostureTask:
    return make_task("joint_posture", joints=["a", "b"], lower=[-1.0, 0.0], upper=[1.0, 2.0], dt=0.02)


def test_the_task_is_built_from_its_options_alone():
    task = two_joint_task()
    assert (task.state_dim, task.action_dim, task.dt) == (4, 2, 0.02)
    assert task.actuator_names == ("a", "b") and task.layout.joints == ("a", "b")
    low, high = task.action_bounds
    np.testing.assert_array_equal(low, [-1.0, 0.0]) and np.testing.assert_array_equal(high, [1.0, 2.0])
    np.testing.assert_array_equal(task.hold_command({"a": 5.0, "b": 0.5, "other": 1.0}), [1.0, 0.5])
    with pytest.raises(ValueError, match="no simulation model"):
        _ = task.model


def test_the_reward_is_best_at_the_goal_and_the_goal_moves_by_joint_name():
    task = two_joint_task()
    task.set_goal({"b": 1.5})
    np.testing.assert_allclose(task.goal.numpy(), [0.0, 1.5])  # a keeps the middle of its limits
    states = torch.tensor([[0.0, 1.5, 0.0, 0.0], [0.3, 1.5, 0.0, 0.0], [0.0, 1.5, 1.0, 0.0]])
    rewards = task.reward(states, torch.zeros(3, 2), states)
    assert rewards[0] == 0.0 and rewards[1] < 0 and rewards[2] < 0
    assert task.is_success(states).tolist() == [True, False, True]
    task.set_goal({"a": 7.0})
    assert task.goal[0] == 1.0, "a goal outside the limits is clipped to them"
    for bad, message in [({"c": 0.0}, "unknown joints"), ({"a": math.nan}, "finite")]:
        with pytest.raises(ValueError, match=message):
            task.set_goal(bad)


@pytest.mark.parametrize("options, message", [
    ({"joints": []}, "distinct joint names"),
    ({"joints": ["a", "a"], "lower": [0, 0], "upper": [1, 1]}, "distinct"),
    ({"joints": ["a"], "lower": [0, 0], "upper": [1]}, "one limit per joint"),
    ({"joints": ["a"], "lower": [1], "upper": [0]}, "lower < upper"),
    ({"joints": ["a"], "lower": [0], "upper": [1], "dt": 0}, "positive"),
])
def test_unusable_options_are_refused_with_a_reason(options, message):
    with pytest.raises(ValueError, match=message):
        make_task("joint_posture", **options)


def test_the_allegro_config_drives_its_16_joints_through_the_position_controller(ros_executor, tmp_path):
    config = yaml.safe_load(config_path("allegro_hand_posture").read_text())
    graph = config["/**"]["ros__parameters"]
    assert graph["task_options"]["joints"] == ALLEGRO_JOINTS
    assert graph["controller"] == "allegro_hand_position_controller"
    node = rclpy.create_node("fake_allegro", context=ros_executor.context)
    commands: list[np.ndarray] = []
    node.create_subscription(Float64MultiArray, "/allegro_hand_position_controller/commands",
                             lambda m: commands.append(np.array(m.data)), QOS)
    states = node.create_publisher(JointState, "/joint_states", QOS)
    goals = node.create_publisher(JointState, "/mpc_controller/goal", QOS)
    ros_executor.add_node(node)
    controller = MpcController(context=ros_executor.context,
                               cli_args=["--ros-args", "--params-file", str(config_path("allegro_hand_posture"))])
    ros_executor.add_node(controller)
    try:
        assert controller.task.action_dim == 16 and controller.mode == "realtime"
        low, high = controller.task.action_bounds
        posture = (low + high) / 2
        for _ in range(60):  # 0.6 s of a 100 Hz joint_state_broadcaster
            msg = JointState(name=ALLEGRO_JOINTS, position=posture.tolist(), velocity=[0.0] * 16)
            msg.header.stamp = controller.get_clock().now().to_msg()
            states.publish(msg)
            wait_for(lambda: False, timeout=0.01)
        assert wait_for(lambda: len(commands) >= 20, timeout=10), len(commands)
        sent = np.array(commands)
        assert sent.shape[1] == 16 and np.all(np.isfinite(sent))
        assert np.all(sent >= low - 1e-12) and np.all(sent <= high + 1e-12)
        assert np.all(np.abs(np.diff(sent, axis=0)) <= 0.03 + 1e-12), "the rate limit of the config"

        goals.publish(JointState(name=["ah_joint01", "ah_joint31"], position=[1.2, 0.9]))
        assert wait_for(lambda: controller.task.goal[1].item() == 1.2, timeout=10)
        assert controller.task.goal[13].item() == 0.9
        goals.publish(JointState(name=["ah_joint99"], position=[0.0]))
        assert wait_for(lambda: controller.rejected.get("goal", 0) == 1, timeout=10)
    finally:
        detach_node(ros_executor, controller)
