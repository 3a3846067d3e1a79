"""Benchmarks of the learning loop through the ROS 2 graph (issue: the learning loop as ROS 2 nodes).

P2 (``--part p2``): the Shadow hand at the PDDM cube config (MPPI, 1000 samples, horizon 7, a 3-member 2x250
ensemble; the shipped config with its planner pinned to PDDM's): the mujoco_bridge (realtime, a new state every 40
ms) and the mpc_controller (realtime, commands at 50 Hz) run as the installed executables, each in its own process;
this process listens to the commands, first while the controller explores (no model, no planner: the floor this
machine sets), then after publishing one model. Prints the replanning rate against its goal (10 Hz), the share of
missed ticks against 1 %, and the p99 of the command period's deviation from 20 ms against 2 ms and against the
exploring graph's, measured where the subscriber's middleware receives each command, where its Python callback
runs, and where the controller published it. ``--subscriber-priority N`` runs this subscribing process at
SCHED_FIFO priority N (root or an rtprio limit needed), as a tuned robot driver would receive the commands; the
bridge and the controller keep the default policy. (The controller's own timer thread at SCHED_FIFO was tried and
made it worse: it waits for the GIL held by the planner thread, an inversion; p99 6.7 ms at the publisher.)

P3 hand (``--part hand``): the Shadow hand cube task through the embedded graph in lockstep with a config
(default the shipped one, ``mbrl-ros up shadow_hand_cube``) for ``--sim-minutes`` of simulated interaction (60:
the goal's hour, 900 episodes of 4 s, about an hour on 2 cores at the shipped 0.1 s control period); prints the
success rate of every block of ``--block`` simulated minutes as it goes (so a stopped run still reports),
against the goal (>= 80 % within one hour), then each goal turn's (``x+``: +90 degrees about x, ...) successes
and drops, and writes ``bench/results/bench_loop_hand.png``; the run directory
(episodes.csv) is ``bench/results/hand-run``.

P3 (``--part p3``): cart-pole swing-up through the embedded graph in lockstep with a config (default the
shipped one, ``mbrl-ros up cartpole_swingup``; each seed sets the bridge's, the controller's and the trainer's
seed), for each seed: the return of every episode; prints the mean over seeds per episode against the goals
(>= 180 by episode 5, >= 195 by episode 10) and writes ``bench/results/bench_loop_p3.png``.

    .venv/bin/python bench/bench_loop.py --part p2 [--seconds 30] [--subscriber-priority 10]
    .venv/bin/python bench/bench_loop.py --part p3 [--seeds 3] [--first-seed 0] [--episodes 10] [--config FILE]
    .venv/bin/python bench/bench_loop.py --part hand [--sim-minutes 60] [--block 5] [--config shadow_hand_cube]
    .venv/bin/python bench/bench_loop.py --quick     # p2 and p3, briefly
Needs the environment of `make test` (DDS on loopback): run it through `make bench` or export the two variables.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64MultiArray

from mbrl_ros.models import ProbabilisticEnsemble, model_to_payload
from mbrl_ros.msg import ModelUpdate
from mbrl_ros.nodes.spinning import BackgroundSpinner
from mbrl_ros.parameter_files import node_parameters, node_task, read_parameter_file
from mbrl_ros.resources import config_path
from mbrl_ros.sim.episode import TaskSimulation
from mbrl_ros.tasks import make_task
from mbrl_ros.tasks.base import Task

QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
EXECUTABLES = Path(sys.prefix) / "lib" / "mbrl_ros"
COMMAND_RATE = 50.0  # Hz
# P2's bridge steps every 40 ms (the shipped config's period is 0.1 s): the controller replans on every new state,
# so a state every 0.1 s would cap the replanning rate at its goal, 10 Hz, whatever the planner could do
P2_STATE_PERIOD = 0.04  # s
COMMAND_TIMES = ("the subscriber's DDS reception (goal p99 < 2 ms)", "the subscriber's Python callback",
                 "the controller's publish (the sample's source time)")
RESULTS = Path(__file__).resolve().parent / "results"  # git-ignored


def pddm_cube_config(directory: Path) -> Path:
    """The shipped Shadow hand config with PDDM's cube planner pinned (MPPI, 1000 samples, horizon 7), which P2 is
    defined at whatever the shipped config plans with; written to ``directory`` (what the run used, kept)."""
    config = yaml.safe_load(config_path("shadow_hand_cube").read_text())
    mpc = config["mpc_controller"]["ros__parameters"]["mpc"]
    mpc.update(optimizer="mppi", horizon=7)
    mpc["optimizer_params"]["population"] = 1000
    path = directory / "shadow_hand_cube_pddm.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def p2(seconds: float, subscriber_priority: int) -> None:
    task = make_task("shadow_hand_cube", control_period=P2_STATE_PERIOD)
    RESULTS.mkdir(exist_ok=True)
    config = pddm_cube_config(RESULTS)
    controller = node_parameters(read_parameter_file(config), "mpc_controller")["controller"]
    # -p applies to /**, which the file's node sections would beat: mode and task_options live under /** there.
    common = ["--ros-args", "--params-file", str(config), "-p", "mode:=realtime",
              "-p", f"task_options.control_period:={P2_STATE_PERIOD}"]
    if subscriber_priority:  # before anything is spawned, and before rclpy starts its threads, which inherit it
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(subscriber_priority))
        except OSError as error:  # EPERM without the privilege, EINVAL outside 1..99
            raise SystemExit(f"--subscriber-priority {subscriber_priority}: {error} (SCHED_FIFO takes 1-99 and needs "
                             "root or an rtprio limit, ulimit -r)") from None
    processes = [subprocess.Popen(command, preexec_fn=default_scheduling)  # the graph keeps the default policy
                 for command in ([str(EXECUTABLES / "mujoco_bridge"), *common],
                                 [str(EXECUTABLES / "mpc_controller"), *common, "-p", f"control_rate:={COMMAND_RATE}"])]
    rclpy.init()
    node = rclpy.create_node("bench_loop_p2")
    # Per command (ns): the DDS sample's reception time here, when this process's Python callback ran, and the
    # sample's source (publish) time in the controller; the DDS times are rclpy's MessageInfo.
    arrivals: list[tuple[int, int, int]] = []
    diagnostics: list[dict[str, str]] = []
    node.create_subscription(Float64MultiArray, f"/{controller}/commands",
                             lambda _, info: arrivals.append((info["received_timestamp"], time.perf_counter_ns(),
                                                              info["source_timestamp"])), QOS)
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diagnostics.extend(
        {v.key: v.value for v in s.values} for s in m.status if s.name.startswith("mpc_controller")), QOS)
    models = node.create_publisher(ModelUpdate, "/model_update", LATCHED)
    model = ProbabilisticEnsemble(task.state_dim, task.action_dim, ensemble_size=3, hidden_layers=2,
                                  hidden_units=250, activation="relu")
    payload = model_to_payload(model)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = BackgroundSpinner(executor)
    spinner.start()

    def wait_for(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 120
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within 120 s")
            time.sleep(0.2)

    def measure() -> tuple[np.ndarray, int, int]:
        """Command times (N, len(COMMAND_TIMES)) over the window (s, from its first), and the controller's ticks and
        missed ticks in it."""
        time.sleep(3.0)  # past the start-up (or the first plans' warm-up)
        start, before = len(arrivals), diagnostics[-1]
        time.sleep(seconds)
        after = diagnostics[-1]
        times = np.array(arrivals[start:], dtype=np.int64)
        return ((times - times[0]) * 1e-9, int(after["ticks"]) - int(before["ticks"]),
                int(after["missed_deadlines"]) - int(before["missed_deadlines"]))

    try:
        wait_for(lambda: diagnostics and len(arrivals) > 0, "commands")
        exploring, _, _ = measure()  # the same graph without a model: no planner running, the floor
        models.publish(ModelUpdate(version=1, kind=payload.kind, metadata_json=payload.metadata_json,
                                   weights=list(payload.weights), sha256=payload.sha256))
        wait_for(lambda: any(d.get("model_version") == "1" for d in diagnostics), "plans with the model")
        window, ticks, missed = measure()
        last = diagnostics[-1]
    finally:
        spinner.stop()
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait(timeout=30)
        node.destroy_node()
        rclpy.try_shutdown()
    receiver = f"SCHED_FIFO {subscriber_priority}" if subscriber_priority else "the default policy"
    print(f"P2 Shadow hand, PDDM config (MPPI 1000 x horizon 7, ensemble 3 x 2x250), {seconds:.0f} s, "
          f"the subscriber at {receiver}:")
    print(f"  replanning rate {float(last['replan_rate_hz']):.1f} Hz (goal >= 10), plan latency p50 "
          f"{float(last['plan_latency_p50_ms']):.0f} ms, p99 {float(last['plan_latency_p99_ms']):.0f} ms")
    rate = len(window) / (window[-1, 0] - window[0, 0])
    print(f"  commands received {len(window)} at {rate:.2f} Hz (timer {COMMAND_RATE:.0f} Hz); missed ticks "
          f"{missed} of {ticks} = {100 * missed / max(ticks, 1):.2f} % (goal < 1 %)")
    print(f"  deviation of the command period from {1e3 / COMMAND_RATE:.0f} ms, p50 / p99 / max (ms), while planning "
          "[the same graph exploring, the floor], at")
    for column, what in enumerate(COMMAND_TIMES):
        jitter, floor = period_deviation_ms(window[:, column]), period_deviation_ms(exploring[:, column])
        print(f"    {what}: {np.percentile(jitter, 50):.2f} / {np.percentile(jitter, 99):.2f} / {jitter.max():.2f}"
              f" [{np.percentile(floor, 50):.2f} / {np.percentile(floor, 99):.2f} / {floor.max():.2f}]")


def default_scheduling() -> None:
    """In a spawned child: back to the default policy (SCHED_OTHER), whatever this process runs at."""
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def period_deviation_ms(arrivals: np.ndarray) -> np.ndarray:
    """|period - 1/COMMAND_RATE| (ms) between consecutive arrival times (s)."""
    return np.abs(np.diff(arrivals) - 1.0 / COMMAND_RATE) * 1e3


def p3(seeds: int, episodes: int, quick: bool, config_name: str, first_seed: int = 0) -> None:
    from mbrl_ros.runner import RunOptions, run

    returns = np.full((seeds, episodes), np.nan)
    base = yaml.safe_load(config_path(config_name).read_text())
    with tempfile.TemporaryDirectory() as scratch:
        for row, seed in enumerate(range(first_seed, first_seed + seeds)):
            config = yaml.safe_load(yaml.safe_dump(base))
            for section in ("mujoco_bridge", "mpc_controller"):
                config[section]["ros__parameters"]["seed"] = seed
            config["dynamics_learner"]["ros__parameters"]["trainer"]["seed"] = seed
            if quick:
                config["mpc_controller"]["ros__parameters"]["mpc"]["optimizer_params"]["population"] = 50
            path = Path(scratch) / f"cartpole_seed{seed}.yaml"
            path.write_text(yaml.safe_dump(config))
            records = []
            run(RunOptions(path, episodes=episodes, mode="lockstep", run_dir=Path(scratch) / f"run{seed}"),
                records.append)
            returns[row] = [r.episode_return for r in records]
            print(f"  seed {seed}: " + " ".join(f"{r:.0f}" for r in returns[row]), flush=True)
    mean = returns.mean(axis=0)
    print(f"P3 cart-pole swing-up, lockstep, {seeds} seed(s): mean return per episode "
          + " ".join(f"{r:.0f}" for r in mean))
    for episode, goal in ((5, 180.0), (10, 195.0)):
        if episodes >= episode:
            print(f"  episode {episode}: {mean[episode - 1]:.1f} (goal >= {goal:.0f}): "
                  f"{'meets' if mean[episode - 1] >= goal else 'MISSES'}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for row in range(seeds):
        axis.plot(range(1, episodes + 1), returns[row], alpha=0.4)
    axis.plot(range(1, episodes + 1), mean, "k-", linewidth=2, label="mean")
    axis.set(xlabel="episode", ylabel="return", title="cart-pole swing-up through the graph (lockstep)")
    axis.legend()
    RESULTS.mkdir(parents=True, exist_ok=True)
    figure.savefig(RESULTS / "bench_loop_p3.png", dpi=100)
    print(f"  curves in {RESULTS / 'bench_loop_p3.png'}")


def hand(sim_minutes: float, block_minutes: float, config_name: str) -> None:
    from mbrl_ros.runner import RunOptions, run

    config = config_path(config_name)
    task = node_task(node_parameters(read_parameter_file(config), "mpc_controller"))  # its control period
    episode_minutes = task.dt * task.episode_length / 60.0
    episodes, per_block = round(sim_minutes / episode_minutes), max(1, round(block_minutes / episode_minutes))
    run_dir = RESULTS / "hand-run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    successes: list[bool] = []
    episodes_run: list[tuple[int, bool, bool]] = []  # (seed, success, dropped) per episode
    started = time.monotonic()
    print(f"P3 Shadow hand cube, lockstep, config {config.stem}: {episodes} episodes of {task.episode_length} x "
          f"{task.dt:g} s ({sim_minutes:g} simulated min); "
          f"success rate per {per_block * episode_minutes:g} simulated min (goal >= 80 % within 60):", flush=True)

    def on_episode(record) -> None:
        successes.append(bool(record.success))
        episodes_run.append((record.seed, bool(record.success), record.length < task.episode_length))
        if len(successes) % per_block == 0:
            rate = 100 * np.mean(successes[-per_block:])
            print(f"  simulated min {len(successes) * episode_minutes:5.1f}: success {rate:5.1f} %  (wall "
                  f"{(time.monotonic() - started) / 60:.0f} min, model v{record.model_version}, val MSE "
                  f"{record.validation_mse:.3g})", flush=True)

    run(RunOptions(config, episodes=episodes, mode="lockstep", run_dir=run_dir), on_episode)
    plot_success(successes, per_block, episode_minutes)
    print_goal_breakdown(task, episodes_run, last=round(15 / episode_minutes))


def goal_turn(episode: TaskSimulation, seed: int) -> str:
    """The hand episode's goal, as the cube's turn about a world axis: e.g. ``x+`` (a positive turn about x)."""
    return episode.task.goal_turn(episode.reset(seed))


def print_goal_breakdown(task: Task, episodes_run: list[tuple[int, bool, bool]], last: int) -> None:
    """Success rate and drops per goal turn, over the run and over its ``last`` episodes."""
    episode = TaskSimulation(task)
    goals = [goal_turn(episode, seed) for seed, _, _ in episodes_run]
    print(f"  per goal: successes / episodes (drops), over the run and over its last {last} episodes")
    for goal in sorted(set(goals)):
        rows = [(index, success, dropped)
                for index, ((_, success, dropped), g) in enumerate(zip(episodes_run, goals, strict=True)) if g == goal]
        late = [row for row in rows if row[0] >= len(episodes_run) - last]
        print(f"    {goal}: {sum(r[1] for r in rows)} / {len(rows)} ({sum(r[2] for r in rows)}), "
              f"last {sum(r[1] for r in late)} / {len(late)} ({sum(r[2] for r in late)})")


def plot_success(successes: list[bool], per_block: int, episode_minutes: float) -> None:
    """Success rate per block of episodes against simulated minutes, into bench/results/bench_loop_hand.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = len(successes) // per_block
    rates = [100 * np.mean(successes[b * per_block:(b + 1) * per_block]) for b in range(blocks)]
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot([(b + 1) * per_block * episode_minutes for b in range(blocks)], rates, "o-")
    axis.axhline(80, color="k", linestyle=":", label="goal within 60 min")
    axis.set(xlabel="simulated minutes of interaction", ylabel="success rate (%)", ylim=(0, 100),
             title="Shadow hand cube through the graph (lockstep)")
    axis.legend()
    RESULTS.mkdir(parents=True, exist_ok=True)
    figure.savefig(RESULTS / "bench_loop_hand.png", dpi=100)
    print(f"  curve in {RESULTS / 'bench_loop_hand.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["p2", "p3", "hand"], help="one part only (default: p2 and p3)")
    parser.add_argument("--seconds", type=float, default=30.0, help="P2 measuring window (s)")
    parser.add_argument("--subscriber-priority", type=int, default=0,
                        help="P2: SCHED_FIFO priority of the subscribing process (0: the default policy)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="p3: the first seed (seeds run from it up)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--sim-minutes", type=float, default=60.0, help="hand: simulated minutes to run")
    parser.add_argument("--block", type=float, default=5.0, help="hand: simulated minutes per success rate")
    parser.add_argument("--config", help="p3 and hand: a shipped config or a file (default: cartpole_swingup for "
                        "p3, shadow_hand_cube for hand)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run of p2 and p3")
    args = parser.parse_args()
    if args.part in (None, "p2"):
        p2(5.0 if args.quick else args.seconds, args.subscriber_priority)
    if args.part in (None, "p3"):
        p3(1 if args.quick else args.seeds, 2 if args.quick else args.episodes, args.quick,
           args.config or "cartpole_swingup", args.first_seed)
    if args.part == "hand":
        hand(args.sim_minutes, args.block, args.config or "shadow_hand_cube")


if __name__ == "__main__":
    main()
