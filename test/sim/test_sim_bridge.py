"""The mujoco_bridge node over real DDS: lockstep handshake, determinism, trajectories, bad input, services."""

import math
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rclpy
import torch
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped, TwistStamped
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, Float64MultiArray
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from mbrl_ros.msg import EpisodeSummary
from mbrl_ros.nodes.conversions import command_message, image_array, seconds_to_stamp, stamp_to_seconds
from mbrl_ros.nodes.mujoco_bridge import MujocoBridge, main
from mbrl_ros.nodes.state_assembly import JOINT_STATES_TOPIC, TopicStateAssembler, pose_topic, twist_topic
from mbrl_ros.sim.episode import TaskSimulation
from mbrl_ros.tasks import make_task

from support import detach_node, wait_for

QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
COMMANDS = "/forward_command_controller/commands"
TRAJECTORY = "/forward_command_controller/joint_trajectory"


@pytest.fixture
def start_bridge(ros_executor):
    """Starts bridges on the test's executor; at the end takes them off it before destroying them, so that no
    callback (the realtime timer fires every control period) runs on a node being destroyed."""
    started = []

    def start(**parameters) -> MujocoBridge:
        overrides = [Parameter(name, value=value) for name, value in parameters.items()]
        bridge = MujocoBridge(context=ros_executor.context, parameter_overrides=overrides)
        ros_executor.add_node(bridge)
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        detach_node(ros_executor, bridge)


class Driver:
    """The controller's side of the handshake: assembles each new state from the topics and answers it once."""

    def __init__(self, executor, task, policy: Callable[[int, np.ndarray], object] | None = None, image=False):
        self.node = rclpy.create_node("test_driver", context=executor.context)
        self.assembler = TopicStateAssembler(task.layout)
        self.policy = policy
        self.states: list[tuple[float, np.ndarray]] = []
        self.summaries: list[EpisodeSummary] = []
        self.images: list[Image] = []
        self.joint_states: list[JointState] = []
        self.active = False
        self._lock = threading.Lock()
        node = self.node
        node.create_subscription(JointState, JOINT_STATES_TOPIC, self._on_joint_state, QOS)
        for body in task.layout.pose_bodies:
            node.create_subscription(PoseStamped, pose_topic(body), lambda m, b=body: self._on_part(
                self.assembler.add_pose, b, m), QOS)
        for body in task.layout.twist_bodies:
            node.create_subscription(TwistStamped, twist_topic(body), lambda m, b=body: self._on_part(
                self.assembler.add_twist, b, m), QOS)
        node.create_subscription(EpisodeSummary, "/mujoco_bridge/episode", self.summaries.append, QOS)
        if image:
            node.create_subscription(Image, "/mujoco_bridge/camera/image_raw", self.images.append, QOS)
        self.commands = node.create_publisher(Float64MultiArray, COMMANDS, QOS)
        self.trajectories = node.create_publisher(JointTrajectory, TRAJECTORY, QOS)
        executor.add_node(node)

    def _on_joint_state(self, msg: JointState) -> None:
        self.joint_states.append(msg)
        self._on_part(lambda m: self.assembler.add_joint_state(m), msg)

    def _on_part(self, add, *args) -> None:
        with self._lock:
            add(*args)
            complete = self.assembler.complete()
            if complete is not None:
                self.states.append(complete)
                self._answer()

    def _answer(self) -> None:
        if self.active and self.policy is not None and self.states:
            answer = self.policy(len(self.states) - 1, self.states[-1][1])
            if answer is not None:
                (self.trajectories if isinstance(answer, JointTrajectory) else self.commands).publish(answer)

    def start(self) -> None:
        """Starts answering, once the bridge listens to the commands (a command sent earlier would be lost)."""
        assert wait_for(lambda: self.commands.get_subscription_count() >= 1
                        and self.trajectories.get_subscription_count() >= 1, timeout=20)
        with self._lock:
            self.active = True
            self._answer()


def test_lockstep_handshake_steps_once_per_command_exactly_like_the_sim_layer(ros_executor, start_bridge):
    task_options = {"episode_length": 12}
    actions = np.random.default_rng(2).uniform(*make_task("shadow_hand_cube").action_bounds, size=(20, 20))
    start_bridge(task="shadow_hand_cube", mode="lockstep", seed=5, lockstep_timeout=0.0,
                 **task_options)
    driver = Driver(ros_executor, make_task("shadow_hand_cube"),
                    policy=lambda k, state: command_message(actions[k]) if k < len(actions) else None)
    driver.start()
    assert wait_for(lambda: len(driver.states) == len(actions) + 1, timeout=60), len(driver.states)
    assert wait_for(lambda: len(driver.summaries) == 1, timeout=10)

    stamps = np.array([stamp for stamp, _ in driver.states])
    np.testing.assert_allclose(np.diff(stamps), 0.04, atol=1e-9)  # one control period per command
    # The same seed and the same commands, without ROS: the same trajectory, and the same reset.
    simulation = TaskSimulation("shadow_hand_cube", seed=5, **task_options)
    expected, rewards = [simulation.state()], []
    for action in actions:
        if simulation.done:  # the command that answers a terminal state starts the next episode
            expected.append(simulation.reset())
        else:
            step = simulation.step(action)
            expected.append(step.next_state)
            rewards.append(step.reward)
    received = np.array([state for _, state in driver.states])
    np.testing.assert_allclose(received, np.array(expected), rtol=0, atol=1e-12)

    summary = driver.summaries[0]
    assert (summary.task, summary.episode, summary.seed, summary.length) == ("shadow_hand_cube", 0, 5, 12)
    assert summary.truncated and not summary.terminated
    assert stamp_to_seconds(summary.header.stamp) == pytest.approx(stamps[12])
    # The return the bridge reports is the task's batched reward over the transitions seen over DDS.
    states = torch.from_numpy(received)
    batched = make_task("shadow_hand_cube").reward(states[:12], torch.from_numpy(actions[:12]), states[1:13])
    assert summary.episode_return == pytest.approx(batched.sum().item(), abs=1e-9)
    assert summary.episode_return == pytest.approx(sum(rewards[:12]), abs=1e-9)


def _trajectory(names, positions, seconds=0.0):
    point = JointTrajectoryPoint(positions=list(positions), time_from_start=Duration(sec=int(seconds)))
    return JointTrajectory(joint_names=list(names), points=[point])


def test_joint_trajectories_are_mapped_onto_the_actuators_by_joint_name(ros_executor, start_bridge):
    task = make_task("shadow_hand_cube")
    names, targets = ["robot0:THJ2", "robot0:WRJ1"], [0.2, -0.4]  # reversed with respect to actuator order
    start_bridge(task="shadow_hand_cube", mode="lockstep", seed=1, lockstep_timeout=0.0)
    driver = Driver(ros_executor, task, policy=lambda k, state: _trajectory(names, targets) if k < 3 else None)
    driver.start()
    assert wait_for(lambda: len(driver.states) == 4, timeout=30)

    simulation = TaskSimulation(task, seed=1)
    ctrl = simulation.hold_command()
    ctrl[list(task.actuator_names).index("robot0:A_THJ2")] = 0.2
    ctrl[list(task.actuator_names).index("robot0:A_WRJ1")] = -0.4
    expected = [simulation.state()] + [simulation.step(ctrl).next_state for _ in range(3)]
    np.testing.assert_allclose(np.array([s for _, s in driver.states]), np.array(expected), rtol=0, atol=1e-12)


def _valid_trajectory(msg: JointTrajectory) -> bool:
    times = [stamp_to_seconds(p.time_from_start) for p in msg.points]
    return (list(msg.joint_names) == ["slider"] and len(msg.points) > 0
            and all(len(p.effort) == 1 and math.isfinite(p.effort[0]) for p in msg.points)
            and all(b > a for a, b in zip(times, times[1:], strict=False)))


any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
bad_commands = st.lists(any_float, max_size=4).filter(lambda d: len(d) != 1 or not math.isfinite(d[0])).map(
    lambda data: Float64MultiArray(data=data))
bad_trajectories = st.builds(
    lambda names, points: JointTrajectory(joint_names=names, points=[
        JointTrajectoryPoint(effort=values, time_from_start=Duration(sec=second)) for values, second in points]),
    st.lists(st.sampled_from(["slider", "hinge", "cart", ""]), max_size=3),
    st.lists(st.tuples(st.lists(any_float, max_size=2), st.integers(0, 3)), max_size=3),
).filter(lambda msg: not _valid_trajectory(msg))


@pytest.fixture
def realtime_cartpole(ros_executor, start_bridge):
    # No command timeout (0: never): hypothesis runs many examples on this one bridge, for longer than any timeout
    # would allow on a loaded machine.
    bridge = start_bridge(task="cartpole_swingup", mode="realtime", command_timeout=0.0)
    driver = Driver(ros_executor, bridge.task)
    driver.start()
    driver.commands.publish(command_message(np.array([1.5])))
    # The cart-pole's motor has gear 4: the slider's effort in /joint_states is 4 N per unit of command.
    assert wait_for(lambda: driver.joint_states and driver.joint_states[-1].effort[0] == 6.0, timeout=20)
    return bridge, driver


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=st.one_of(bad_commands, bad_trajectories))
def test_bad_commands_are_rejected_and_the_last_valid_one_held_while_publishing_goes_on(realtime_cartpole, message):
    bridge, driver = realtime_cartpole
    rejected, published = sum(bridge.rejected_messages.values()), len(driver.joint_states)
    (driver.trajectories if isinstance(message, JointTrajectory) else driver.commands).publish(message)
    assert wait_for(lambda: sum(bridge.rejected_messages.values()) == rejected + 1, timeout=10)
    assert wait_for(lambda: len(driver.joint_states) > published + 1, timeout=10), "the bridge stopped publishing"
    assert driver.joint_states[-1].effort[0] == 6.0


def test_without_commands_the_robot_holds_position_and_runtime_parameters_are_checked(realtime_cartpole):
    bridge, driver = realtime_cartpole
    results = bridge.set_parameters([Parameter("command_timeout", value=-1.0), Parameter("task", value="reacher")])
    assert not results[0].successful and "command_timeout" in results[0].reason
    assert not results[1].successful
    assert bridge.set_parameters([Parameter("command_timeout", value=0.2)])[0].successful
    # A motor "holds" with zero force (position actuators aim at the current posture).
    assert wait_for(lambda: driver.joint_states[-1].effort[0] == 0.0, timeout=10)
    assert bridge.rejected_messages.total() == 0


def test_realtime_mode_publishes_clock_and_its_real_time_factor(ros_executor, start_bridge):
    bridge = start_bridge(task="cartpole_swingup", mode="realtime")
    node = rclpy.create_node("listener", context=ros_executor.context)
    clocks, factors = [], []
    node.create_subscription(Clock, "/clock", clocks.append, QOS)
    node.create_subscription(Float64, "/mujoco_bridge/real_time_factor", factors.append, QOS)
    ros_executor.add_node(node)
    assert wait_for(lambda: len(factors) >= 2 and len(clocks) >= 10, timeout=20)
    times = [stamp_to_seconds(c.clock) for c in clocks]
    assert np.all(np.diff(times) > 0) and factors[-1].data > 0
    assert bridge.rejected_messages.total() == 0


def test_reset_and_pause_services(ros_executor, start_bridge):
    task = make_task("cartpole_swingup")
    start_bridge(task="cartpole_swingup", mode="lockstep", seed=20, lockstep_timeout=0.0)
    answered = {"count": 0}

    def policy(k: int, state: np.ndarray):
        answered["count"] += 1
        return command_message(np.array([2.0]))

    driver = Driver(ros_executor, task, policy)
    pause = driver.node.create_client(SetBool, "/mujoco_bridge/pause")
    reset = driver.node.create_client(Trigger, "/mujoco_bridge/reset")
    assert pause.wait_for_service(timeout_sec=20) and reset.wait_for_service(timeout_sec=20)
    driver.start()
    assert wait_for(lambda: len(driver.states) >= 3, timeout=20)

    assert pause.call(SetBool.Request(data=True), timeout_sec=10).message == "paused"
    settled = len(driver.states)
    assert not wait_for(lambda: len(driver.states) > settled + 1, timeout=0.5), "paused, yet stepping"
    assert pause.call(SetBool.Request(data=False), timeout_sec=10).message == "running"
    assert wait_for(lambda: len(driver.states) > settled + 3, timeout=20)

    response = reset.call(Trigger.Request(), timeout_sec=10)
    assert response.success and "episode 1" in response.message and "seed 21" in response.message
    assert wait_for(lambda: len(driver.summaries) == 1, timeout=10)
    summary = driver.summaries[0]
    assert not summary.terminated and not summary.truncated and summary.length > 0, "cut short by the reset"
    first_of_episode_1 = TaskSimulation(task, seed=21).state()
    assert wait_for(lambda: any(np.allclose(s, first_of_episode_1, rtol=0, atol=1e-12) for _, s in driver.states),
                    timeout=10)


def test_the_camera_publishes_the_same_frames_as_the_sim_layer_with_the_state_stamp(ros_executor, start_bridge):
    task = make_task("cartpole_swingup")
    start_bridge(task="cartpole_swingup", mode="lockstep", seed=4, lockstep_timeout=0.0,
                 camera_enabled=True, camera_width=48, camera_height=32)
    driver = Driver(ros_executor, task, image=True)
    assert wait_for(lambda: driver.images and driver.states, timeout=20)
    image = driver.images[-1]
    assert image.header.stamp == driver.joint_states[-1].header.stamp == seconds_to_stamp(0.0)
    simulation = TaskSimulation(task, seed=4)
    np.testing.assert_array_equal(image_array(image), simulation.render(48, 32))
    simulation.close()


@pytest.mark.parametrize(("parameters", "message"), [
    ({"mode": "fast"}, "mode"),
    ({"task": "no_such_task"}, "unknown task"),
    ({"command_timeout": -1.0}, "command_timeout"),
    ({"episode_length": -3}, "episode_length"),
    ({"seed": "abc"}, "seed"),
    ({"controller": "bad controller!"}, "controller"),
    ({"camera_enabled": True, "camera_width": 0}, "positive"),
])
def test_unusable_start_up_parameters_are_refused_with_a_reason(ros_executor, start_bridge, parameters, message):
    with pytest.raises(ValueError, match=message):
        start_bridge(**parameters)


def test_task_options_reach_the_bridges_task_as_the_controllers(ros_executor, start_bridge):
    bridge = start_bridge(task="shadow_hand_cube", **{"task_options.goal_axes": "z", "task_options.goal_angle": 0.5})
    assert (bridge.task.goal_axes, bridge.task.goal_angle) == ("z", 0.5)
    assert start_bridge(task="reacher", **{"task_options.episode_length": 7}).task.episode_length == 7
    assert start_bridge(task="reacher", episode_length=4, **{"task_options.episode_length": 7}).task.episode_length == 4
    with pytest.raises(ValueError, match="bad options"):
        start_bridge(task="reacher", **{"task_options.no_such_option": 1})


def test_start_up_parameters_given_by_a_file_stay_read_only(ros_executor, start_bridge):
    bridge = start_bridge(task="reacher", seed=3, command_timeout=0.2)
    assert not bridge.set_parameters([Parameter("seed", value=4)])[0].successful
    assert bridge.get_parameter("seed").value == 3
    assert bridge.set_parameters([Parameter("command_timeout", value=0.3)])[0].successful
    assert not bridge.set_parameters([Parameter("command_timeout", value="soon")])[0].successful


def test_the_executable_exits_with_a_message_on_bad_parameters(capsys):
    assert main(["mujoco_bridge", "--ros-args", "-p", "mode:=fast"]) == 2
    assert "mode must be one of" in capsys.readouterr().err
    assert main(["mujoco_bridge", "--ros-args", "-p", "seed:=abc"]) == 2
    assert "parameter seed" in capsys.readouterr().err


def test_the_installed_executable_runs_lockstep_in_its_own_process(ros_executor):
    task = make_task("reacher")
    actions = np.random.default_rng(9).uniform(*task.action_bounds, size=(8, 2))
    executable = Path(sys.prefix) / "lib" / "mbrl_ros" / "mujoco_bridge"
    process = subprocess.Popen([str(executable), "--ros-args", "-p", "task:=reacher", "-p", "mode:=lockstep",
                                "-p", "seed:=3", "-p", "lockstep_timeout:=0.0"])
    try:
        driver = Driver(ros_executor, task, policy=lambda k, state: command_message(actions[k]) if k < 8 else None)
        driver.start()
        assert wait_for(lambda: len(driver.states) == 9, timeout=60), len(driver.states)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, "the node should shut down cleanly on Ctrl-C"
    simulation = TaskSimulation(task, seed=3)
    expected = [simulation.state()] + [simulation.step(action).next_state for action in actions]
    np.testing.assert_allclose(np.array([s for _, s in driver.states]), np.array(expected), rtol=0, atol=1e-12)
