"""mujoco_bridge: a simulated robot that behaves like a ros2_control robot, so a hardware driver can replace it.

Publishes (every control step, all with one ``header.stamp``):
    ``/joint_states`` (sensor_msgs/JointState): every hinge/slide joint of the model, positions, velocities and
        actuator efforts;
    ``~/<body>_pose`` (geometry_msgs/PoseStamped) for each body key of the task (e.g. ``object``, ``goal``);
    ``~/<body>_twist`` (geometry_msgs/TwistStamped) for each body key whose velocity the state holds;
    ``~/camera/image_raw`` (sensor_msgs/Image, rgb8) when ``camera_enabled``;
    ``/clock`` (rosgraph_msgs/Clock) when ``publish_clock``: the bridge then owns simulated time;
and ``~/episode`` (mbrl_ros/EpisodeSummary) when an episode ends, ``~/real_time_factor`` (std_msgs/Float64)
every second.

Subscribes ``<controller>/commands`` (std_msgs/Float64MultiArray, one control per actuator in the task's
actuator order, forward_command_controller convention) and ``<controller>/joint_trajectory``
(trajectory_msgs/JointTrajectory, mapped by joint name). Services ``~/reset`` (std_srvs/Trigger) and
``~/pause`` (std_srvs/SetBool). Modes ``realtime`` (steps on the wall clock) and ``lockstep`` (one control
period per command received, or after ``lockstep_timeout``). The README describes the protocol in full.
"""

import sys
import time
from collections import Counter
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.exceptions import NameValidationException, ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock as ClockMessage
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, Float64MultiArray
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from mbrl_ros.msg import EpisodeSummary
from mbrl_ros.nodes.conversions import (
    MessageError,
    command_array,
    image_message,
    joint_state_message,
    joint_trajectory_targets,
    pose_stamped_message,
    seconds_to_stamp,
    twist_stamped_message,
)
from mbrl_ros.nodes.parameters import section
from mbrl_ros.nodes.spinning import run_node
from mbrl_ros.settings import is_number
from mbrl_ros.sim.commands import ActuatorCommand
from mbrl_ros.sim.episode import TaskSimulation

MODES = ("realtime", "lockstep")
STATE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
EPISODE_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
MAX_CATCH_UP_STEPS = 5  # realtime: at most this many control steps per timer tick when behind the wall clock
REAL_TIME_FACTOR_PERIOD = 1.0  # s of wall-clock time between ~/real_time_factor messages
LOG_THROTTLE = 1.0  # s between repeated error/warning lines of one kind

PARAMETERS: dict[str, tuple[Any, str, bool]] = {  # name: (default, description, changeable at run time)
    "task": ("shadow_hand_cube", "task name or package.module:Class (mbrl_ros.tasks); options in task_options.*",
             False),
    "episode_length": (0, "control steps per episode; 0 keeps the task's default", False),
    "seed": (0, "base seed: episode k starts from seed + k", False),
    "mode": ("realtime", "realtime (wall-clock steps) or lockstep (one step per command)", False),
    "controller": ("forward_command_controller", "namespace of <controller>/commands and /joint_trajectory", False),
    "command_timeout": (0.5, "s of simulated time without a command before holding position (0: never)", True),
    "lockstep_timeout": (5.0, "lockstep: s of wall-clock time without a command before stepping anyway (0: never)",
                         True),
    "auto_reset": (True, "start the next episode when one ends (else wait for ~/reset)", False),
    "publish_clock": (True, "publish /clock and stamp messages with simulated time", False),
    "frame_id": ("world", "frame of the poses and twists", False),
    "camera_enabled": (False, "publish ~/camera/image_raw every control step", False),
    "camera_width": (64, "image width (pixels)", False),
    "camera_height": (64, "image height (pixels)", False),
}


class MujocoBridge(Node):
    """The bridge node; see the module docstring. Raises ValueError for unusable parameters."""

    def __init__(self, **node_options: Any) -> None:
        # whatever a parameter file gives is declared, so task_options.* reach the task as they reach the
        # controller's and the learner's: all three must build the same task
        super().__init__("mujoco_bridge", automatically_declare_parameters_from_overrides=True, **node_options)
        for name, (default, description, dynamic) in PARAMETERS.items():
            descriptor = ParameterDescriptor(description=description, read_only=not dynamic,
                                             type=Parameter.Type.from_parameter_value(default).value)
            if not self.has_parameter(name):
                self.declare_parameter(name, default, descriptor)
                continue
            try:
                self.set_descriptor(name, descriptor)  # given by a parameter file: its type must be the default's
            except ParameterException as error:
                given = self.get_parameter(name).value
                raise ValueError(f"parameter {name} must be of type {type(default).__name__}, got {given!r} "
                                 f"({error})") from error
        value = {name: self.get_parameter(name).value for name in PARAMETERS}
        if value["mode"] not in MODES:
            raise ValueError(f"parameter mode must be one of {MODES}, got {value['mode']!r}")
        for name in ("command_timeout", "lockstep_timeout"):
            _check_timeout(name, value[name])
        if value["episode_length"] < 0:
            raise ValueError(f"parameter episode_length must be >= 0, got {value['episode_length']}")
        options = section(self, "task_options")
        if value["episode_length"]:
            options["episode_length"] = value["episode_length"]
        self._simulation = TaskSimulation(value["task"], seed=value["seed"], **options)
        self.task = self._simulation.task
        self._task_reference = value["task"]
        self._mode = value["mode"]
        self._auto_reset = value["auto_reset"]
        self._publish_clock = value["publish_clock"]
        self._frame_id = value["frame_id"]
        self._lockstep_timeout = float(value["lockstep_timeout"])
        self._camera = (value["camera_width"], value["camera_height"]) if value["camera_enabled"] else None
        if self._camera:
            self._simulation.render(*self._camera)  # fails now, not mid-run, if rendering cannot work
        self.add_on_set_parameters_callback(self._on_set_parameters)

        sim = self._simulation.sim
        self._dt = sim.dt
        self._joint_names = sim.joint_names
        self._command_names = [joint or actuator for joint, actuator in zip(sim.actuator_joints, sim.actuator_names,
                                                                             strict=True)]
        self._trajectory_field = "positions" if sim.position_actuators.all() else "effort"
        self._command = ActuatorCommand(self._simulation.hold_command(), float(value["command_timeout"]))
        self.rejected_messages: Counter[str] = Counter()
        self._ticks = 0  # control periods on the bridge's clock: never goes back, runs on across episodes
        self._paused = False
        self._pending_step = False
        self._episode_wall_start = time.monotonic()
        self._episode_time_start = 0.0
        self._rtf_wall, self._rtf_time = time.monotonic(), 0.0

        # Lockstep: a state topic's new subscriber gets the current state again (same stamp), so a controller that
        # starts after the bridge need not wait for the lockstep timeout.
        events = None
        if self._mode == "lockstep":
            events = PublisherEventCallbacks(matched=self._on_subscriber_matched, use_default_callbacks=False)

        def state_publisher(message_type: type, topic: str) -> Any:
            return self.create_publisher(message_type, topic, STATE_QOS, event_callbacks=events)

        self._joint_states = state_publisher(JointState, "/joint_states")
        self._poses = {key: state_publisher(PoseStamped, f"~/{key}_pose") for key in self.task.bodies}
        self._twists = {key: state_publisher(TwistStamped, f"~/{key}_twist") for key in self.task.layout.twist_bodies}
        self._image = state_publisher(Image, "~/camera/image_raw") if self._camera else None
        self._clock_publisher = None
        if self._publish_clock:
            self._clock_publisher = self.create_publisher(ClockMessage, "/clock", STATE_QOS)
        self._episodes = self.create_publisher(EpisodeSummary, "~/episode", EPISODE_QOS)
        self._real_time_factor = self.create_publisher(Float64, "~/real_time_factor", STATE_QOS)
        controller = value["controller"].rstrip("/")
        try:
            self.create_subscription(Float64MultiArray, f"{controller}/commands", self._on_command, COMMAND_QOS)
            self.create_subscription(JointTrajectory, f"{controller}/joint_trajectory", self._on_trajectory,
                                     COMMAND_QOS)
        except NameValidationException as error:
            raise ValueError(f"parameter controller: {error}") from error
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(SetBool, "~/pause", self._on_pause)

        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._last_step_wall = time.monotonic()
        if self._mode == "realtime":
            self._realtime_origin, self._realtime_steps = time.monotonic(), 0
            self.create_timer(self._dt, self._on_realtime_tick, clock=steady)
        else:
            self.create_timer(0.01, self._on_lockstep_watchdog, clock=steady)
        self.create_timer(REAL_TIME_FACTOR_PERIOD, self._on_report_real_time_factor, clock=steady)
        self.get_logger().info(
            f"task {self.task.name} ({self.task.action_dim} actuators, dt {self._dt} s), mode {self._mode}, "
            f"commands on {controller}/commands in actuator order {list(self.task.actuator_names)}"
        )
        # The first state goes out when a subscriber matches (_on_subscriber_matched), not before: a command
        # answering a state published now could step the simulation before later subscribers have seen it.

    @property
    def _time(self) -> float:
        """Simulated time on the bridge's clock (s)."""
        return self._ticks * self._dt

    # ------------------------------------------------------------------------------------------ parameters
    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        for parameter in parameters:
            if parameter.name in ("command_timeout", "lockstep_timeout"):
                try:
                    _check_timeout(parameter.name, parameter.value)
                except ValueError as error:
                    return SetParametersResult(successful=False, reason=str(error))
        for parameter in parameters:
            if parameter.name == "command_timeout":
                self._command.timeout = float(parameter.value)
            elif parameter.name == "lockstep_timeout":
                self._lockstep_timeout = float(parameter.value)
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------------------------------- commands
    def _reject(self, source: str, error: MessageError) -> None:
        self.rejected_messages[source] += 1
        self.get_logger().error(
            f"rejected a {source} message: {error}; holding the last valid command", throttle_duration_sec=LOG_THROTTLE
        )

    def _on_command(self, msg: Float64MultiArray) -> None:
        try:
            action = command_array(msg, self.task.action_dim)
        except MessageError as error:
            self._reject("commands", error)
            return
        self._command.command(action, self._time)
        self._after_command()

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        try:
            targets = joint_trajectory_targets(msg, self._command_names, self._trajectory_field)
        except MessageError as error:
            self._reject("joint_trajectory", error)
            return
        self._command.follow(targets.indices, targets.times, targets.values, self._time)
        self._after_command()

    def _after_command(self) -> None:
        if self._mode != "lockstep":
            return
        if self._paused:
            self._pending_step = True
        else:
            self._advance()

    # ------------------------------------------------------------------------------------------- stepping
    def _on_subscriber_matched(self, info: Any) -> None:
        if info.current_count_change > 0:
            self._publish_state()

    def _on_realtime_tick(self) -> None:
        if self._paused:
            return
        due = int((time.monotonic() - self._realtime_origin) / self._dt) - self._realtime_steps
        if due > MAX_CATCH_UP_STEPS:
            self.get_logger().warning(
                f"{due} control steps behind the wall clock: skipping {due - MAX_CATCH_UP_STEPS}",
                throttle_duration_sec=LOG_THROTTLE,
            )
            self._realtime_steps += due - MAX_CATCH_UP_STEPS
            due = MAX_CATCH_UP_STEPS
        for _ in range(due):
            self._advance()
            self._realtime_steps += 1

    def _on_lockstep_watchdog(self) -> None:
        if self._paused or self._lockstep_timeout <= 0:
            return
        if time.monotonic() - self._last_step_wall > self._lockstep_timeout:
            self._advance()

    def _advance(self) -> None:
        """One control period with the command in force, or the start of the next episode after one ended."""
        self._last_step_wall = time.monotonic()
        if self._simulation.done:
            if self._auto_reset:
                self._start_episode()
            return
        ctrl, timed_out = self._command.current(self._time + self._dt, self._simulation.hold_command)
        if timed_out:
            self.get_logger().warning(
                f"no command for more than {self._command.timeout} s: holding position",
                throttle_duration_sec=LOG_THROTTLE,
            )
        self._simulation.step(ctrl)
        self._ticks += 1
        self._publish_state()
        if self._simulation.done:
            self._publish_summary()

    def _start_episode(self) -> None:
        """Resets to the next episode's initial state, one control period later on the bridge's clock."""
        self._simulation.reset()
        self._ticks += 1
        self._command.hold(self._simulation.hold_command())
        self._episode_wall_start, self._episode_time_start = time.monotonic(), self._time
        self._publish_state()

    # ------------------------------------------------------------------------------------------- services
    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self._simulation.length > 0 and not self._simulation.done:
            self._publish_summary()
        self._start_episode()
        self._pending_step = False
        response.success = True
        response.message = f"episode {self._simulation.episode} started (seed {self._simulation.seed})"
        return response

    def _on_pause(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        if request.data != self._paused:
            self._paused = request.data
            if not self._paused:
                if self._mode == "realtime":
                    self._realtime_origin, self._realtime_steps = time.monotonic(), 0
                elif self._pending_step:
                    self._pending_step = False
                    self._advance()
                self._last_step_wall = time.monotonic()
        response.success = True
        response.message = "paused" if self._paused else "running"
        return response

    # ----------------------------------------------------------------------------------------- publishing
    def _stamp(self) -> Any:
        return seconds_to_stamp(self._time) if self._publish_clock else self.get_clock().now().to_msg()

    def _publish_state(self) -> None:
        stamp = self._stamp()
        if self._clock_publisher is not None:
            self._clock_publisher.publish(ClockMessage(clock=stamp))
        for key, publisher in self._poses.items():
            publisher.publish(pose_stamped_message(self._simulation.body_pose(key), stamp, self._frame_id))
        for key, publisher in self._twists.items():
            publisher.publish(twist_stamped_message(self._simulation.body_twist(key), stamp, self._frame_id))
        if self._image is not None:
            self._image.publish(image_message(self._simulation.render(*self._camera), stamp, "camera"))
        sim = self._simulation.sim
        self._joint_states.publish(joint_state_message(
            self._joint_names, sim.joint_positions(self._joint_names), sim.joint_velocities(self._joint_names),
            sim.joint_efforts(self._joint_names), stamp,
        ))

    def _publish_summary(self) -> None:
        summary = self._simulation.summary()
        wall = time.monotonic() - self._episode_wall_start
        msg = EpisodeSummary(
            task=self._task_reference, episode=summary.episode, seed=summary.seed,
            episode_return=summary.episode_return, length=summary.length, success=summary.success,
            terminated=summary.terminated,
            truncated=summary.truncated, real_time_factor=(self._time - self._episode_time_start) / max(wall, 1e-9),
        )
        msg.header.stamp = self._stamp()
        self._episodes.publish(msg)
        self.get_logger().info(
            f"episode {summary.episode} (seed {summary.seed}): return {summary.episode_return:.4g} in "
            f"{summary.length} steps, success {summary.success}, real-time factor {msg.real_time_factor:.3g}"
        )

    def _on_report_real_time_factor(self) -> None:
        now = time.monotonic()
        factor = (self._time - self._rtf_time) / max(now - self._rtf_wall, 1e-9)
        self._rtf_wall, self._rtf_time = now, self._time
        if not self._paused:
            self._real_time_factor.publish(Float64(data=factor))

    def destroy_node(self) -> None:
        if hasattr(self, "_simulation"):  # absent when the constructor refused its parameters
            self._simulation.close()
        super().destroy_node()


def _check_timeout(name: str, value: Any) -> None:
    if not is_number(value) or not np.isfinite(value) or value < 0:
        raise ValueError(f"parameter {name} must be a finite number of seconds >= 0, got {value!r}")


def main(argv: list[str] | None = None) -> int:
    parameters = "; ".join(f"{name} ({default!r}): {text}" for name, (default, text, _) in PARAMETERS.items())
    description = f"A MuJoCo-simulated robot with ros2_control's interfaces. Parameters (-p name:=value): {parameters}"
    return run_node(MujocoBridge, "mujoco_bridge", description, argv)


if __name__ == "__main__":
    sys.exit(main())
