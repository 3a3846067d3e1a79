"""Shadow hand cube task: physics steps per second raw vs through mujoco_bridge in lockstep, and real-time factor.

Three measurements, side by side in one run:

1. raw: the sim layer alone (``TaskSimulation.step``, task reward included) and bare ``mujoco.mj_step`` on the
   same model, physics steps per second;
2. lockstep: the bridge executable in its own process, lockstep mode, and a controller node in this process
   that assembles every state from the topics (``TopicStateAssembler``) and answers it with one command over
   DDS: physics steps per second, as a ratio to raw;
3. realtime: the bridge in realtime mode with no controller; the real-time factor is measured here from
   ``/clock`` against the wall clock (goal >= 0.99), and the bridge's own ``~/real_time_factor`` is shown.

Usage: ``python bench/bench_bridge.py [--quick]`` (``make bench`` runs it with the project's ROS environment).
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

# isort: off
import mbrl_ros.sim  # noqa: F401  (chooses MuJoCo's headless OpenGL backend: before mujoco is imported)
# isort: on
import mujoco
import numpy as np
import rclpy
from common import REPO_ROOT, report, set_threads
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray
from tqdm import tqdm

from mbrl_ros.nodes.conversions import command_message, stamp_to_seconds
from mbrl_ros.nodes.dds_domain import unused_domain_id
from mbrl_ros.nodes.state_assembly import JOINT_STATES_TOPIC, TopicStateAssembler, pose_topic, twist_topic
from mbrl_ros.sim.episode import TaskSimulation

TASK = "shadow_hand_cube"
QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
BRIDGE = Path(sys.prefix) / "lib" / "mbrl_ros" / "mujoco_bridge"


def ros_environment() -> dict[str, str]:
    """This host only, and a ROS domain of this run's own (tests or runs may go on beside it): one no participant on
    this host is in now, unless ROS_DOMAIN_ID is set."""
    environ = dict(os.environ)
    environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO_ROOT / "config" / "fastdds_localhost.xml"))
    if not environ.get("ROS_DOMAIN_ID"):
        environ["ROS_DOMAIN_ID"] = str(unused_domain_id(preferred=1 + os.getpid() % 100))
    return environ


class RawPhysics:
    """Bare ``mujoco.mj_step`` on the task's model, ``frame_skip`` steps per control period."""

    def __init__(self, simulation: TaskSimulation, actions: np.ndarray) -> None:
        self.model, self.data = simulation.sim.model, mujoco.MjData(simulation.sim.model)
        self.frame_skip, self.actions, self.steps = simulation.sim.frame_skip, actions, 0

    def run(self, seconds: float) -> int:
        """Control steps taken in ``seconds``."""
        start, steps = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            self.data.ctrl[:] = self.actions[self.steps % len(self.actions)]
            mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
            self.steps, steps = self.steps + 1, steps + 1
        return steps


class SimLayer:
    """The sim layer: ``TaskSimulation.step`` (physics, state assembly, the task's batched reward)."""

    def __init__(self, simulation: TaskSimulation, actions: np.ndarray) -> None:
        self.simulation, self.actions, self.steps = simulation, actions, 0

    def run(self, seconds: float) -> int:
        start, steps = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            if self.simulation.done:
                self.simulation.reset()
            self.simulation.step(self.actions[self.steps % len(self.actions)])
            self.steps, steps = self.steps + 1, steps + 1
        return steps


class LockstepController:
    """A controller node: assembles every state of the bridge from its topics and answers it with one command."""

    def __init__(self, simulation: TaskSimulation, actions: np.ndarray) -> None:
        self.commands = [command_message(action) for action in actions]
        self.assembler = TopicStateAssembler(simulation.layout)
        self.answers = 0
        self.active = False
        self.waiting = False  # a state arrived while inactive (or before the bridge listened): answer it later
        self.node = rclpy.create_node("bench_lockstep_controller")
        self.publisher = self.node.create_publisher(Float64MultiArray, "/forward_command_controller/commands", QOS)
        node, assembler = self.node, self.assembler
        node.create_subscription(JointState, JOINT_STATES_TOPIC, lambda m: self._on_part(assembler.add_joint_state, m),
                                 QOS)
        for body in simulation.layout.pose_bodies:
            node.create_subscription(PoseStamped, pose_topic(body),
                                     lambda m, b=body: self._on_part(assembler.add_pose, b, m), QOS)
        for body in simulation.layout.twist_bodies:
            node.create_subscription(TwistStamped, twist_topic(body),
                                     lambda m, b=body: self._on_part(assembler.add_twist, b, m), QOS)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(node)

    def _answer(self) -> None:
        self.waiting = not self.active or self.publisher.get_subscription_count() == 0
        if not self.waiting:
            self.publisher.publish(self.commands[self.answers % len(self.commands)])
            self.answers += 1

    def _on_part(self, add, *args) -> None:
        add(*args)
        if self.assembler.complete() is not None:
            self._answer()

    def run(self, seconds: float) -> int:
        """Round trips (= control steps of the bridge) completed in ``seconds``."""
        start, answers = time.perf_counter(), self.answers
        self.active = True
        while time.perf_counter() - start < seconds:
            if self.waiting:
                self._answer()
            self.executor.spin_once(timeout_sec=0.05)
        self.active = False
        return self.answers - answers

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def start_bridge(mode: str, environ: dict[str, str]) -> subprocess.Popen:
    arguments = ["--ros-args", "-p", f"task:={TASK}", "-p", f"mode:={mode}", "-p", "lockstep_timeout:=0.0",
                 "--log-level", "warn"]
    return subprocess.Popen([str(BRIDGE), *arguments], env=environ)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def step_rates(seconds: float, environ: dict[str, str]) -> dict[str, float]:
    """Physics steps/s of bare MuJoCo, the sim layer and the bridge in lockstep, measured in alternating slices.

    The bridge waits idle while the other two run (lockstep, no timeout), so each slice has the machine's cores
    as the others had them: the ratios hold even when other work comes and goes.
    """
    simulation = TaskSimulation(TASK, seed=0)
    low, high = simulation.task.action_bounds
    actions = np.random.default_rng(0).uniform(low, high, (256, low.size))
    contenders = {"raw": RawPhysics(simulation, actions), "sim layer": SimLayer(TaskSimulation(TASK, seed=0), actions)}
    controller = LockstepController(simulation, actions)
    bridge = start_bridge("lockstep", environ)
    try:
        warm_up = time.perf_counter() + 60
        while controller.answers < 20 and time.perf_counter() < warm_up:
            controller.run(0.5)
        if controller.answers < 20:
            raise SystemExit("the bridge did not answer in lockstep within 60 s")
        contenders["bridge lockstep"] = controller
        steps, spent = dict.fromkeys(contenders, 0), dict.fromkeys(contenders, 0.0)
        slices = max(1, round(seconds / 0.5))
        for _ in tqdm(range(slices), desc="alternating 0.5 s slices", mininterval=1.0):
            for name, contender in contenders.items():
                start = time.perf_counter()
                steps[name] += contender.run(0.5)
                spent[name] += time.perf_counter() - start
    finally:
        stop(bridge)
        controller.close()
    return {name: steps[name] * simulation.sim.frame_skip / spent[name] for name in contenders}


def realtime_factor(seconds: float, environ: dict[str, str]) -> tuple[float, float]:
    """(real-time factor from /clock against this process's wall clock, the bridge's own last report)."""
    clocks: list[tuple[float, float]] = []
    reports: list[float] = []
    node = rclpy.create_node("bench_realtime_listener")
    node.create_subscription(Clock, "/clock", lambda m: clocks.append((time.monotonic(), stamp_to_seconds(m.clock))),
                             QOS)
    node.create_subscription(Float64, "/mujoco_bridge/real_time_factor", lambda m: reports.append(m.data), QOS)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    bridge = start_bridge("realtime", environ)
    try:
        warm_up = time.monotonic() + 60
        while len(clocks) < 25 and time.monotonic() < warm_up:  # a second of simulated time to settle
            executor.spin_once(timeout_sec=0.1)
        first = len(clocks)
        end = time.monotonic() + seconds
        with tqdm(total=round(seconds), desc="realtime, no controller", unit=" s", mininterval=1.0) as progress:
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.1)
                progress.update(round(seconds - (end - time.monotonic())) - progress.n)
    finally:
        stop(bridge)
        executor.shutdown()
        node.destroy_node()
    (wall_start, sim_start), (wall_end, sim_end) = clocks[first - 1], clocks[-1]
    return (sim_end - sim_start) / (wall_end - wall_start), (reports[-1] if reports else float("nan"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (seconds instead of a minute)")
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 20.0
    set_threads(1)
    environ = ros_environment()
    os.environ.update({key: environ[key] for key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE",
                                                     "ROS_DOMAIN_ID")})
    rclpy.init()
    try:
        rates = step_rates(seconds, environ)
        factor, reported = realtime_factor(max(seconds, 5.0), environ)
    finally:
        rclpy.shutdown()
    print(f"Shadow hand cube task (dt 0.04 s = 20 physics steps of 2 ms), {seconds:.0f} s per contender:")
    for name, rate in rates.items():
        print(f"  {name}: {rate:.0f} physics steps/s ({rate / 20:.0f} control steps/s)")
    ok = report("sim layer vs raw mj_step (physics steps/s)", rates["sim layer"], rates["raw"], 0.5, "raw")
    # A lockstep round trip costs a sim-layer step (about two raw ones) plus five messages out, one back and the
    # wake-ups of two Python executors: a fifth of raw speed is the goal set here.
    ok &= report("bridge lockstep over DDS vs raw mj_step (physics steps/s)", rates["bridge lockstep"], rates["raw"],
                 0.2, "raw")
    ok &= report("bridge realtime, no controller: real-time factor (from /clock)", factor, 1.0, 0.99, "wall clock")
    print(f"  the bridge's own ~/real_time_factor report: {reported:.4f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
