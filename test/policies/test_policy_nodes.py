"""Policies over real DDS: the learner exports a cloned policy; the controller runs it (planner: policy)."""

import threading
import time

import numpy as np
import pytest
import rclpy
import torch
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from mbrl_ros.models import ModelPayload, model_from_payload, model_to_payload
from mbrl_ros.msg import ModelUpdate
from mbrl_ros.msg import Transition as TransitionMessage
from mbrl_ros.nodes.conversions import seconds_to_stamp
from mbrl_ros.nodes.dynamics_learner import DynamicsLearner
from mbrl_ros.nodes.mpc_controller import MpcController
from mbrl_ros.policies import PolicyNetwork

from support import wait_for

QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
COMMANDS = "/forward_command_controller/commands"
JOINTS = ["slider", "hinge"]  # cartpole_swingup: state (slider, hinge, their velocities), action (1,) in [-3, 3]


def update_message(model: torch.nn.Module, version: int) -> ModelUpdate:
    payload = model_to_payload(model)
    return ModelUpdate(version=version, kind=payload.kind, metadata_json=payload.metadata_json,
                       weights=payload.weights, sha256=payload.sha256)


def start(executor, node_class, **parameters):
    node = node_class(context=executor.context,
                      parameter_overrides=[Parameter(name, value=value) for name, value in parameters.items()])
    executor.add_node(node)
    return node


class Robot:
    """A test node standing for the robot: records the controller's commands and publishes its states and updates."""

    def __init__(self, executor, name: str):
        self.node = rclpy.create_node(name, context=executor.context)
        self.commands: list[np.ndarray] = []
        self.lock = threading.Lock()
        self.node.create_subscription(Float64MultiArray, COMMANDS, self._on_command, QOS)
        self.policies = self.node.create_publisher(ModelUpdate, "/policy_update", LATCHED)
        self.models = self.node.create_publisher(ModelUpdate, "/model_update", LATCHED)
        self.joint_states = self.node.create_publisher(JointState, "/joint_states", QOS)
        executor.add_node(self.node)

    def _on_command(self, msg: Float64MultiArray) -> None:
        with self.lock:
            self.commands.append(np.array(msg.data))

    def publish_state(self, state: np.ndarray, stamp: float | None = None) -> None:
        """Publishes ``state`` (slider, hinge, their velocities) on /joint_states, stamped ``stamp`` (s) if given."""
        msg = JointState(name=JOINTS, position=state[:2].tolist(), velocity=state[2:].tolist())
        if stamp is not None:
            msg.header.stamp = seconds_to_stamp(stamp)
        self.joint_states.publish(msg)


def test_the_controller_runs_a_received_policy_and_rejects_a_bad_one(ros_executor):
    controller = start(ros_executor, MpcController, task="cartpole_swingup", mode="lockstep", planner="policy")
    robot = Robot(ros_executor, "policy_test")
    assert wait_for(lambda: controller._commands.get_subscription_count() > 0, 10.0)

    def answer_to(state: np.ndarray, stamp: float) -> np.ndarray:
        with robot.lock:
            count = len(robot.commands)
        robot.publish_state(state, stamp)
        assert wait_for(lambda: len(robot.commands) > count, 10.0), "no command answered the state"
        with robot.lock:
            return robot.commands[-1]

    rng = np.random.default_rng(0)
    answer_to(rng.normal(size=4), 0.05)  # no policy yet: explores
    wrong = PolicyNetwork(3, 1, [-3.0], [3.0])
    robot.policies.publish(update_message(wrong, 1))
    assert wait_for(lambda: controller.rejected.get("policy_update", 0) == 1, 10.0)
    torch.manual_seed(0)
    policy = PolicyNetwork(4, 1, [-3.0], [3.0], hidden_units=16)
    robot.policies.publish(update_message(policy, 2))
    assert wait_for(lambda: controller.policy_version == 2, 10.0)
    for step in range(2, 8):
        state = rng.normal(size=4)
        command = answer_to(state, 0.05 * step)
        expected = policy(torch.as_tensor(state, dtype=torch.float32)).detach().numpy()
        np.testing.assert_allclose(command, expected, atol=1e-5)
    assert controller.policy_actions == 6 and controller.rejected == {"policy_update": 1}


def test_the_learner_exports_a_policy_imitating_the_commands(ros_executor, tmp_path):
    learner = start(ros_executor, DynamicsLearner, task="cartpole_swingup", data_dir=str(tmp_path / "data"),
                    policy_export=True, **{"model.kind": "mlp", "model.hidden_units": 16,
                                           "trainer.max_epochs": 2, "trainer.warm_epochs": 1,
                                           "retrain.every_transitions": 400, "retrain.min_transitions": 400,
                                           "policy_imitation.epochs": 150, "policy_imitation.learning_rate": 3e-3})
    test_node = rclpy.create_node("export_test", context=ros_executor.context)
    received = []
    test_node.create_subscription(ModelUpdate, "/policy_update", received.append, LATCHED)
    transitions = test_node.create_publisher(TransitionMessage, "transitions", QOS)
    ros_executor.add_node(test_node)
    assert wait_for(lambda: transitions.get_subscription_count() > 0, 10.0)
    rng = np.random.default_rng(1)
    gain = np.array([0.8, -0.5, 0.3, 0.2])  # the commanding expert: a = clip(gain . s, -3, 3)
    for _ in range(400):
        state = rng.uniform(-1, 1, size=4)
        action = [float(np.clip(gain @ state, -3, 3))]
        transitions.publish(TransitionMessage(state=state.tolist(), action=action, next_state=state.tolist(),
                                              reward=0.0, done=False))
        time.sleep(0.001)
    assert wait_for(lambda: len(received) >= 1, 60.0), f"no policy; {len(learner.learner.buffer)} transitions"
    msg = received[-1]
    assert msg.kind == "policy" and msg.version == learner.learner.version
    policy = model_from_payload(ModelPayload(msg.kind, msg.metadata_json, bytes(msg.weights), msg.sha256), "policy")
    states = rng.uniform(-1, 1, size=(200, 4))
    with torch.no_grad():
        errors = np.abs(policy(torch.as_tensor(states, dtype=torch.float32)).numpy()[:, 0] - states @ gain)
    assert errors.mean() < 0.1, errors.mean()  # expert actions span about +-1.5


def test_the_policy_acts_while_the_first_plan_is_not_ready(ros_executor):
    from mbrl_ros.models import DeterministicMLP

    controller = start(ros_executor, MpcController, task="cartpole_swingup", mode="realtime", state_timeout=100.0,
                       **{"mpc.horizon": 30, "mpc.propagation": "deterministic",
                          "mpc.optimizer_params.population": 2000, "mpc.optimizer_params.iterations": 3})
    robot = Robot(ros_executor, "fallback_test")
    torch.manual_seed(0)
    policy = PolicyNetwork(4, 1, [-3.0], [3.0], hidden_units=16)
    robot.policies.publish(update_message(policy, 1))
    assert wait_for(lambda: controller.policy_version == 1, 10.0)
    state = np.array([0.1, 0.2, -0.3, 0.4])
    robot.publish_state(state)
    assert wait_for(lambda: controller._state is not None, 10.0)
    robot.models.publish(update_message(DeterministicMLP(4, 1, hidden_units=500), 1))
    assert wait_for(lambda: controller.policy_actions >= 3, 10.0), controller.missed_deadlines
    assert controller.missed_deadlines >= 3
    expected = policy(torch.as_tensor(state, dtype=torch.float32)).detach().numpy()
    with robot.lock:
        assert any(np.allclose(command, expected, atol=1e-5) for command in robot.commands)


def test_nodes_refusing_their_parameters_say_which_and_shut_down_cleanly(tmp_path):
    context = rclpy.Context()
    rclpy.init(context=context)
    bad = {DynamicsLearner: {"task": "cartpole_swingup", "data_dir": str(tmp_path), "trainer.batch_size": "big"},
           MpcController: {"task": "cartpole_swingup", "planner_threads": 1, "mode": "sideways"}}
    messages = {DynamicsLearner: "trainer setting batch_size must be int, got 'big'", MpcController: "mode"}
    refusals = []  # their tracebacks keep the refused nodes alive, as a program reporting the error does
    try:
        for node_class, parameters in bad.items():
            with pytest.raises(ValueError, match=messages[node_class]) as refusal:
                node_class(context=context,
                           parameter_overrides=[Parameter(name, value=value) for name, value in parameters.items()])
            refusals.append(refusal)
    finally:
        context.try_shutdown()  # destroys every node of the context, the refused ones too: no second error
