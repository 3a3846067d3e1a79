"""The embedded graph: the simulation bridge, the dynamics learner and the MPC controller in one process.

The nodes are the same classes `ros2 launch mbrl_ros sim.launch.py` starts, built from the same parameter
file (``--params-file``), spun by one multi-threaded executor and talking over real DDS topics; a monitor node
reads what any observer could (episode summaries, planner status, model updates, the command stream) and
writes the run directory (:mod:`mbrl_ros.runs`).
"""

import json
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64MultiArray

from mbrl_ros.msg import EpisodeSummary, ModelUpdate, PlannerStatus
from mbrl_ros.nodes.conversions import stamp_to_seconds
from mbrl_ros.nodes.dds_domain import shared_domain_warning
from mbrl_ros.nodes.spinning import REFUSED_PARAMETER_ERRORS, BackgroundSpinner, refusal_message
from mbrl_ros.parameter_files import read_parameter_file
from mbrl_ros.runs import RUN_LOGS, CsvLog, plot_run

LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
RELIABLE_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
DRAIN_TIME = 0.5  # s the graph runs on without the bridge at the end of a run
SIGNAL_POLL_INTERVAL = 0.2  # s between the main thread's checks for a signal taken by another thread


@dataclass
class EpisodeRecord:
    """One finished episode as the runner reports it (a row of ``episodes.csv``)."""

    episode: int
    seed: int  # the seed of the episode's initial state and goal (the simulator's reset)
    episode_return: float
    success: bool
    length: int
    transitions: int
    model_version: int
    validation_nll: float
    validation_mse: float
    plan_latency_p50_ms: float
    plan_latency_p99_ms: float
    missed_ticks: int
    sim_time_s: float
    wall_time_s: float

    def row(self) -> dict[str, Any]:
        return {"episode": self.episode, "seed": self.seed, "return": self.episode_return, "success": self.success,
                "length": self.length, "transitions": self.transitions, "model_version": self.model_version,
                "validation_nll": self.validation_nll, "validation_mse": self.validation_mse,
                "plan_latency_p50_ms": self.plan_latency_p50_ms,
                "plan_latency_p99_ms": self.plan_latency_p99_ms, "missed_ticks": self.missed_ticks,
                "sim_time_s": self.sim_time_s, "wall_time_s": self.wall_time_s}

    def line(self, episodes: int) -> str:
        mse = "-" if np.isnan(self.validation_mse) else f"{self.validation_mse:.3g}"
        latency = "exploring" if np.isnan(self.plan_latency_p50_ms) else (
            f"plan p50 {self.plan_latency_p50_ms:.0f} ms p99 {self.plan_latency_p99_ms:.0f} ms")
        return (f"episode {self.episode + 1}/{episodes}: return {self.episode_return:8.2f}  success "
                f"{'yes' if self.success else 'no '}  | model v{self.model_version} val MSE {mse}  | {latency}  | "
                f"missed ticks {self.missed_ticks}")


@dataclass
class _EpisodeWindow:
    """What the monitor gathers between two episode ends."""

    plan_times: list[float] = field(default_factory=list)
    missed_ticks: int = 0
    started_wall: float = field(default_factory=time.monotonic)


class RunMonitor(Node):
    """Observes the running graph and writes the run directory; see the module docstring.

    Args:
        logs: the run directory's CSV logs by name (:data:`~mbrl_ros.runs.RUN_LOGS`), which the caller closes.
        bridge: the bridge node's name (its ``~/episode`` topic).
        controller: the controller's command namespace (``<controller>/commands``).
        control_period: seconds between commands in realtime mode, for counting missed ticks; None in
            lockstep mode, where commands come as fast as the planner and none is missed.
        on_episode: called with every finished episode.
    """

    def __init__(self, logs: dict[str, CsvLog], bridge: str, controller: str, control_period: float | None,
                 on_episode: Callable[[EpisodeRecord], None], **node_options: Any):
        super().__init__("mbrl_run_monitor", **node_options)
        self._logs = logs
        self._period, self._on_episode = control_period, on_episode
        self._lock = threading.Lock()
        self._window = _EpisodeWindow()
        self._model_version, self._transitions = 0, 0
        self._validation_nll = self._validation_mse = float("nan")
        self._last_command_wall: float | None = None
        self._start_wall = time.monotonic()
        self._previous_end = 0.0
        self.create_subscription(EpisodeSummary, f"/{bridge}/episode", self._on_episode_summary, RELIABLE_QOS)
        self.create_subscription(PlannerStatus, "/mpc_controller/status", self._on_status, RELIABLE_QOS)
        self.create_subscription(ModelUpdate, "/model_update", self._on_model, LATCHED_QOS)
        if control_period is not None:
            self.create_subscription(Float64MultiArray, f"{controller}/commands", self._on_command, RELIABLE_QOS)

    def _on_status(self, msg: PlannerStatus) -> None:
        with self._lock:
            self._window.plan_times.append(msg.plan_time)
            self._logs["plans"].write(time_s=stamp_to_seconds(msg.header.stamp), plan_time_ms=1e3 * msg.plan_time,
                                      iterations=msg.iterations, predicted_return=msg.predicted_return,
                                      disagreement=msg.disagreement, model_version=msg.model_version)

    def _on_model(self, msg: ModelUpdate) -> None:
        extra = json.loads(msg.metadata_json).get("extra", {})
        with self._lock:
            self._model_version = int(msg.version)
            self._validation_nll = float(extra.get("validation_nll", float("nan")))
            self._validation_mse = float(extra.get("validation_mse", float("nan")))
            self._transitions = int(extra.get("transitions", self._transitions))

    def _on_command(self, msg: Float64MultiArray) -> None:
        """Counts, on the subscriber's side, the command periods that passed with no command (realtime)."""
        now = time.monotonic()
        with self._lock:
            missed = 0
            if self._last_command_wall is not None:
                missed = max(0, round((now - self._last_command_wall) / self._period) - 1)
            self._last_command_wall = now
            self._window.missed_ticks += missed
            self._logs["ticks"].write(time_s=now - self._start_wall, missed=missed)

    def _on_episode_summary(self, msg: EpisodeSummary) -> None:
        end = stamp_to_seconds(msg.header.stamp)
        with self._lock:
            window, self._window = self._window, _EpisodeWindow()
            latencies = 1e3 * np.array(window.plan_times)
            record = EpisodeRecord(
                episode=int(msg.episode), seed=int(msg.seed), episode_return=float(msg.episode_return),
                success=bool(msg.success), length=int(msg.length), transitions=self._transitions,
                model_version=self._model_version,
                validation_nll=self._validation_nll, validation_mse=self._validation_mse,
                plan_latency_p50_ms=float(np.percentile(latencies, 50)) if len(latencies) else float("nan"),
                plan_latency_p99_ms=float(np.percentile(latencies, 99)) if len(latencies) else float("nan"),
                missed_ticks=window.missed_ticks, sim_time_s=end - self._previous_end,
                wall_time_s=time.monotonic() - window.started_wall,
            )
            self._previous_end = end
            self._logs["episodes"].write(**record.row())
        self._on_episode(record)


class GraphConfigurationError(ValueError):
    """The parameter file cannot configure the graph: unreadable, or a node refused a setting (named)."""


class RunDirectoryError(ValueError):
    """The run directory cannot take this run's logs (one holds the columns of another version)."""


def empty_list_parameters(config: Any, prefix: str = "") -> list[str]:
    """Dotted names of the empty lists in a parsed parameter file: ROS 2 cannot type them (rclpy refuses to
    declare a parameter whose type is unknown), so the key has to be left out instead."""
    if isinstance(config, dict):
        return [name for key, value in config.items()
                for name in empty_list_parameters(value, f"{prefix}{key}.")]
    return [prefix.rstrip(".")] if isinstance(config, list) and not config else []


def _check_parameter_file(path: Path) -> None:
    """Raises GraphConfigurationError for a parameter file that no node could start from."""
    try:
        config = read_parameter_file(path)
    except ValueError as error:
        raise GraphConfigurationError(str(error)) from error
    empty = [name.replace(".ros__parameters", "") for name in empty_list_parameters(config)]
    if empty:
        raise GraphConfigurationError(f"{path}: {', '.join(empty)}: an empty list cannot be a ROS 2 parameter "
                                      f"(its type is unknown); leave the key out for the default")


def shared_thread_warning(training_threads: int, planner_threads: int) -> str | None:
    """What to tell the user when the learner and the controller of one process were given different torch
    thread counts, which one process cannot honour: ``torch.set_num_threads`` is process-wide and the controller,
    built after the learner, sets it for both. None when they agree."""
    if training_threads == planner_threads:
        return None
    return (f"training_threads {training_threads} and planner_threads {planner_threads} differ, but the embedded "
            f"graph is one process and torch's thread count is process-wide: both training and planning run on "
            f"{planner_threads} (the controller's); run the nodes as separate processes (the launch files) for "
            f"separate counts")


def _build(node_class: type[Node], **kwargs: Any) -> Node:
    """The node, or GraphConfigurationError naming it when it refuses its parameters."""
    try:
        return node_class(**kwargs)
    except REFUSED_PARAMETER_ERRORS as error:
        raise GraphConfigurationError(f"{node_class.__name__}: {refusal_message(error)}") from error


@dataclass(frozen=True)
class RunOptions:
    """What ``mbrl-ros up`` runs.

    Attributes:
        config: the parameter file (ros__parameters form).
        episodes: stop after this many episodes.
        mode: "lockstep" or "realtime" for the bridge and the controller (None: as the config says).
        run_dir: the run directory (None: runs/<config>-<time>).
        data_dir: the learner's data directory (None: <run_dir>/learner; an existing one is resumed).
        record: also record the run's topics into <run_dir>/bag (rosbag2, MCAP).
    """

    config: Path
    episodes: int
    mode: str | None = None
    run_dir: Path | None = None
    data_dir: Path | None = None
    record: bool = False


def run(options: RunOptions, on_episode: Callable[[EpisodeRecord], None]) -> Path:
    """Runs the graph until ``options.episodes`` episodes have ended; returns the run directory.

    At the end the bridge stops, the others drain, the learner finishes the round the last episode started (its
    data directory's newest model has seen every episode), the nodes are destroyed (the learner flushes its
    transitions), the plots are drawn. SIGINT and SIGTERM (when called from the main thread) stop the run the same
    way within a fraction of a second, except that a round in progress ends at its epoch's end and is dropped;
    then KeyboardInterrupt is raised.

    Raises:
        GraphConfigurationError: the parameter file is unreadable or a node refused one of its settings.
        RunDirectoryError: a log already in the run directory has other columns than this version writes.
        KeyboardInterrupt: after a clean stop on SIGINT or SIGTERM.
    """
    from mbrl_ros.nodes.bag_recorder import BagRecorder
    from mbrl_ros.nodes.dynamics_learner import DynamicsLearner
    from mbrl_ros.nodes.mpc_controller import MpcController
    from mbrl_ros.nodes.mujoco_bridge import MujocoBridge

    _check_parameter_file(options.config)
    run_dir = options.run_dir or Path("runs") / f"{options.config.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=True)
    logs: dict[str, CsvLog] = {}
    try:
        for name, columns in RUN_LOGS.items():
            logs[name] = CsvLog(run_dir / f"{name}.csv", columns)
    except ValueError as error:
        for log in logs.values():
            log.close()
        raise RunDirectoryError(str(error)) from error
    shutil.copyfile(options.config, run_dir / "config.yaml")
    data_dir = options.data_dir or run_dir / "learner"
    params_file = ["--ros-args", "--params-file", str(options.config)]
    # Explicit overrides, not "-p" arguments: those apply to /** and lose to the file's node sections.
    mode = [Parameter("mode", value=options.mode)] if options.mode else []

    domain_warning = shared_domain_warning()  # before this process joins the domain
    context = Context()
    rclpy.init(context=context)
    nodes: list[Node] = []
    finished = threading.Event()
    episodes_done = 0

    def episode_ended(record: EpisodeRecord) -> None:
        nonlocal episodes_done
        on_episode(record)
        episodes_done += 1
        if episodes_done >= options.episodes:
            finished.set()

    signals: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        signals.append(signum)
        finished.set()

    # After rclpy.init, whose own handler would shut the context down under the nodes; a shell may also have
    # started this process with SIGINT ignored (a background job).
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_handlers = {signum: signal.signal(signum, on_signal)
                         for signum in (signal.SIGINT, signal.SIGTERM)} if in_main_thread else {}
    executor = SingleThreadedExecutor(context=context)  # the work runs in the nodes' threads (nodes/spinning.py)
    spinner = BackgroundSpinner(executor)
    try:
        learner = _build(DynamicsLearner, context=context, cli_args=params_file,
                         parameter_overrides=[Parameter("data_dir", value=str(data_dir))])
        nodes.append(learner)
        controller = _build(MpcController, context=context, cli_args=params_file, parameter_overrides=mode)
        nodes.append(controller)
        thread_warning = shared_thread_warning(learner.get_parameter("training_threads").value,
                                               controller.get_parameter("planner_threads").value)
        for warning in (thread_warning, domain_warning):
            if warning:
                controller.get_logger().warning(warning)
        period = controller.task.dt if controller.mode == "realtime" else None
        monitor = RunMonitor(logs, "mujoco_bridge", controller.get_parameter("controller").value.rstrip("/"),
                             period, episode_ended, context=context)
        nodes.append(monitor)
        if options.record:
            nodes.append(BagRecorder(str(run_dir / "bag"), recorded_topics(controller), context=context))
        for node in nodes:
            executor.add_node(node)
        spinner.start()
        # Last, and spun only once every subscription of the others is matched to its publishers: in lockstep the
        # bridge's first state goes out as soon as the controller listens, and the learner must not miss it.
        bridge = _build(MujocoBridge, context=context, cli_args=params_file, parameter_overrides=mode)
        nodes.append(bridge)
        if not wait_until_matched([bridge, controller], [learner, controller, monitor], timeout=10.0):
            bridge.get_logger().warning("starting before every subscription matched: the first states may be "
                                        "missed by the learner")
        executor.add_node(bridge)
        # Timed: CPython runs a signal's handler in the main thread at its next bytecode, and a signal the kernel
        # delivers to another thread (any thread may take a process's signal) does not wake an untimed wait.
        while not finished.wait(SIGNAL_POLL_INTERVAL):
            pass
        # Drain: the bridge stops producing, the others take what is still queued for them (the learner the last
        # transitions of the last episode) before the executor stops.
        executor.remove_node(bridge)
        time.sleep(DRAIN_TIME)
        if options.record and not signals:  # the monitor may hear of the last episode before the recorder has it
            nodes[-2].wait_for(f"/{bridge.get_name()}/episode", options.episodes, timeout=5.0)
        # The last episode's round, so that the data directory's newest model has seen every episode (a run
        # continued from it starts there); a signal cuts it short.
        while not signals and not learner.learner.wait_until_idle(SIGNAL_POLL_INTERVAL):
            pass
    finally:
        spinner.stop(timeout=10)  # no callback may still run when its node is destroyed
        for node in reversed(nodes):
            node.destroy_node()  # the controller joins its planner, the learner its training, the recorder its bag
        context.try_shutdown()
        for log in logs.values():
            log.close()
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
    plot_run(run_dir)
    if signals:
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signals[0]).name}")
    return run_dir


def wait_until_matched(publishing: list["Node"], subscribing: list["Node"], timeout: float) -> bool:
    """Waits until each publisher of ``publishing`` is matched by as many subscriptions as ``subscribing`` hold
    on its topic (DDS matches endpoints asynchronously, even within one process); False after ``timeout`` s."""
    wanted = {}
    for node in subscribing:
        for subscription in node.subscriptions:
            wanted[subscription.topic_name] = wanted.get(subscription.topic_name, 0) + 1
    publishers = [p for node in publishing for p in node.publishers if p.topic_name in wanted]
    deadline = time.monotonic() + timeout
    while any(p.get_subscription_count() < wanted[p.topic_name] for p in publishers):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def recorded_topics(controller: "Node") -> list[str]:
    """The topics of a run worth keeping: state, commands, poses, planner status, episodes, models."""
    command_namespace = controller.get_parameter("controller").value.rstrip("/")
    topics = ["/joint_states", f"{command_namespace}/commands", "/mpc_controller/status", "/mujoco_bridge/episode",
              "/model_update", "/clock"]
    layout = controller.task.layout
    topics += [f"/mujoco_bridge/{body}_pose" for body in layout.pose_bodies]
    topics += [f"/mujoco_bridge/{body}_twist" for body in layout.twist_bodies]
    return [topic if topic.startswith("/") else f"/{topic}" for topic in topics]
