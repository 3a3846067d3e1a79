"""The mpc_controller node over real DDS: bad states, a stale state, and invalid models never reach the robot."""

import hashlib
import io
import math
import time

import numpy as np
import pytest
import rclpy
import torch
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from mbrl_ros.models import DeterministicMLP, model_to_payload
from mbrl_ros.msg import EpisodeSummary, ModelUpdate
from mbrl_ros.nodes.conversions import seconds_to_stamp
from mbrl_ros.nodes.mpc_controller import MpcController

from support import detach_node, wait_for

QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
PERIOD = 0.05  # s, the cart-pole's control period
SMALL_PLANNER = {"mpc.horizon": 5, "mpc.optimizer": "random_shooting", "mpc.optimizer_params.population": 50,
                 "mpc.propagation": "deterministic"}


class FakeRobot:
    """The robot's side: publishes cart-pole joint states, keeps every command and model sent."""

    def __init__(self, executor):
        self.node = rclpy.create_node("fake_robot", context=executor.context)
        self.commands: list[np.ndarray] = []
        self.node.create_subscription(Float64MultiArray, "/robot_controller/commands",
                                      lambda m: self.commands.append(np.array(m.data)), QOS)
        self.states = self.node.create_publisher(JointState, "/joint_states", QOS)
        self.models = self.node.create_publisher(ModelUpdate, "/model_update", LATCHED)
        self.time = 0.0
        executor.add_node(self.node)

    def publish_state(self, position=(0.0, math.pi), velocity=(0.0, 0.0), names=("slider", "hinge")) -> None:
        self.time += PERIOD
        msg = JointState(name=list(names), position=list(position), velocity=list(velocity))
        msg.header.stamp = seconds_to_stamp(self.time)
        self.states.publish(msg)

    def publish_model(self, payload, version: int) -> None:
        self.models.publish(ModelUpdate(version=version, kind=payload.kind, metadata_json=payload.metadata_json,
                                        weights=list(payload.weights), sha256=payload.sha256))


@pytest.fixture
def controller_and_robot(ros_executor):
    overrides = {"task": "cartpole_swingup", "mode": "realtime", "controller": "robot_controller",
                 "state_timeout": 0.3, "planner_threads": 1, **SMALL_PLANNER}
    robot = FakeRobot(ros_executor)
    controller = MpcController(context=ros_executor.context,
                               parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
    ros_executor.add_node(controller)
    yield controller, robot
    detach_node(ros_executor, controller)  # joins the planner thread


def stream_states(robot: FakeRobot, count: int, **state) -> None:
    for _ in range(count):
        robot.publish_state(**state)
        wait_for(lambda: False, timeout=PERIOD)


def test_nan_inf_and_wrong_length_states_never_give_a_nan_command(controller_and_robot):
    controller, robot = controller_and_robot
    stream_states(robot, 5)
    assert wait_for(lambda: len(robot.commands) >= 3, timeout=10), "no commands from valid states"
    for bad in [dict(position=(math.nan, 0.0)), dict(velocity=(math.inf, 0.0)), dict(position=(0.0,)),
                dict(names=("slider",), position=(0.0,), velocity=(0.0,))]:
        stream_states(robot, 3, **bad)
        stream_states(robot, 1)
    assert wait_for(lambda: sum(controller.rejected.values()) >= 4, timeout=10), controller.rejected
    sent = len(robot.commands)
    assert wait_for(lambda: len(robot.commands) > sent, timeout=5), "the controller stopped commanding"
    commands = np.array(robot.commands)
    assert commands.shape[1] == 1 and np.all(np.isfinite(commands)) and np.all(np.abs(commands) <= 3.0)


def test_a_stale_state_makes_the_controller_hold_within_one_period(controller_and_robot):
    controller, robot = controller_and_robot
    # States keep coming until the controller answers: on a loaded host its first commands can come later than the
    # stale bound after a fixed burst of states, and a stale tick then would be right.
    deadline = time.monotonic() + 10
    while len(robot.commands) < 5 and time.monotonic() < deadline:
        stream_states(robot, 1)
    assert len(robot.commands) >= 5
    assert controller.stale_ticks == 0
    # Exploration changes the command every tick while the state is fresh; once stale, every tick repeats the last.
    assert wait_for(lambda: controller.stale_ticks >= 1, timeout=0.3 + 3 * PERIOD + 1.0)
    held = len(robot.commands)
    assert wait_for(lambda: len(robot.commands) >= held + 5, timeout=5), "a stale state must still be answered"
    tail = np.array(robot.commands[held - 1:])
    assert np.all(tail == tail[0]), "commands changed while the state was stale"
    stream_states(robot, 10)
    fresh = np.array(robot.commands[-5:])
    assert len(np.unique(fresh)) > 1, "exploration did not resume with a fresh state"


def test_invalid_model_updates_are_rejected_and_control_goes_on_with_the_old_model(controller_and_robot):
    controller, robot = controller_and_robot
    torch.manual_seed(0)
    valid = model_to_payload(DeterministicMLP(4, 1, hidden_layers=1, hidden_units=16))
    stream_states(robot, 3)
    robot.publish_model(valid, version=1)
    assert wait_for(lambda: controller.model_version == 1, timeout=10)

    nan_model = DeterministicMLP(4, 1, hidden_layers=1, hidden_units=16)
    with torch.no_grad():
        next(nan_model.parameters()).fill_(math.nan)
    buffer = io.BytesIO()
    torch.save(nan_model.state_dict(), buffer)  # a pickle: must never be unpickled
    pickled = buffer.getvalue()
    invalid = [
        model_to_payload(DeterministicMLP(5, 1, hidden_layers=1, hidden_units=16)),  # other dimensions
        model_to_payload(nan_model),  # NaN weights
        valid.__class__(valid.kind, valid.metadata_json, valid.weights, "0" * 64),  # wrong sha256
        valid.__class__(valid.kind, valid.metadata_json, pickled, hashlib.sha256(pickled).hexdigest()),
        valid.__class__(valid.kind, valid.metadata_json, valid.weights[:-8],
                        hashlib.sha256(valid.weights[:-8]).hexdigest()),  # truncated
    ]
    for version, payload in enumerate(invalid, start=2):
        robot.publish_model(payload, version=version)
        assert wait_for(lambda v=version: controller.rejected.get("model_update", 0) == v - 1, timeout=10), version
    assert controller.model_version == 1
    sent = len(robot.commands)
    stream_states(robot, 10)
    assert wait_for(lambda: len(robot.commands) >= sent + 5, timeout=10), "control stopped after a bad model"
    assert np.all(np.isfinite(np.array(robot.commands)))


@pytest.fixture
def lockstep_controller_and_robot(ros_executor):
    overrides = {"task": "cartpole_swingup", "mode": "lockstep", "controller": "robot_controller",
                 "bridge": "fake_bridge", "episode_model_wait": 3.0, "planner_threads": 1, **SMALL_PLANNER}
    robot = FakeRobot(ros_executor)
    episodes = robot.node.create_publisher(EpisodeSummary, "/fake_bridge/episode", QOS)
    controller = MpcController(context=ros_executor.context,
                               parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
    ros_executor.add_node(controller)
    assert wait_for(lambda: robot.states.get_subscription_count() > 0 and episodes.get_subscription_count() > 0
                    and controller._commands.get_subscription_count() > 0, timeout=10)
    yield controller, robot, episodes
    detach_node(ros_executor, controller)


def end_episode(robot: FakeRobot, episodes) -> None:
    msg = EpisodeSummary(task="cartpole_swingup", length=3)
    msg.header.stamp = seconds_to_stamp(robot.time)  # the last state's stamp, as the bridge sends it
    episodes.publish(msg)


def test_lockstep_holds_the_next_episode_until_the_model_trained_on_the_last_arrives(lockstep_controller_and_robot):
    controller, robot, episodes = lockstep_controller_and_robot
    torch.manual_seed(0)
    model = model_to_payload(DeterministicMLP(4, 1, hidden_layers=1, hidden_units=16))
    for answered in range(1, 4):  # the first (exploring) episode: every state answered at once
        robot.publish_state()
        assert wait_for(lambda answered=answered: len(robot.commands) >= answered, timeout=10)
    end_episode(robot, episodes)
    assert wait_for(lambda: controller._awaiting_model is not None, timeout=10)
    robot.publish_state()  # the next episode's first state: held, no model newer than version 0 yet
    assert not wait_for(lambda: len(robot.commands) > 3, timeout=1.0), "answered before the new model arrived"
    robot.publish_model(model, version=1)
    assert wait_for(lambda: len(robot.commands) == 4, timeout=10), "the held state was never answered"
    assert controller.model_version == 1, "the held state must be planned with the new model"

    end_episode(robot, episodes)  # no model follows this time: the wait gives up after episode_model_wait
    assert wait_for(lambda: controller._awaiting_model is not None, timeout=10)
    robot.publish_state()
    assert not wait_for(lambda: len(robot.commands) > 4, timeout=1.5)
    assert wait_for(lambda: len(robot.commands) == 5, timeout=10), "the wait never timed out"
    assert controller._awaiting_model is None and controller.model_version == 1
    assert np.all(np.isfinite(np.array(robot.commands)))


def second_episode_commands(ros_executor, model) -> list[np.ndarray]:
    """Commands of a fresh lockstep controller (seed 0, the model given) for 3 states, an episode end, 3 more."""
    overrides = {"task": "cartpole_swingup", "mode": "lockstep", "controller": "robot_controller",
                 "bridge": "fake_bridge", "planner_threads": 1, **SMALL_PLANNER}
    robot = FakeRobot(ros_executor)
    episodes = robot.node.create_publisher(EpisodeSummary, "/fake_bridge/episode", QOS)
    controller = MpcController(context=ros_executor.context,
                               parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
    ros_executor.add_node(controller)
    try:
        assert wait_for(lambda: robot.states.get_subscription_count() > 0 and episodes.get_subscription_count() > 0
                        and controller._commands.get_subscription_count() > 0, timeout=10)
        robot.publish_model(model, version=1)
        assert wait_for(lambda: controller.model_version == 1, timeout=10)
        for answered in range(1, 7):
            if answered == 4:
                end_episode(robot, episodes)
                assert wait_for(lambda: controller._episodes_ended == 1, timeout=10)
            robot.publish_state(position=(0.1 * answered, math.pi - 0.2 * answered))
            assert wait_for(lambda answered=answered: len(robot.commands) >= answered, timeout=10)
        return robot.commands
    finally:
        detach_node(ros_executor, controller)
        detach_node(ros_executor, robot.node)


def test_a_seeded_lockstep_controller_repeats_its_commands_after_an_episode_end(ros_executor):
    torch.manual_seed(0)
    model = model_to_payload(DeterministicMLP(4, 1, hidden_layers=1, hidden_units=16))
    first, second = (second_episode_commands(ros_executor, model) for _ in range(2))
    assert len(first) == len(second) == 6
    np.testing.assert_array_equal(np.array(first), np.array(second))  # the next episode's plans are seeded too
