"""``mbrl-ros up CONFIG``: the simulated robot learning under MPC, the whole ROS 2 graph in one process."""

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "up", help="run the bridge, learner and controller in one process (the embedded graph)",
        description="Runs the simulation bridge, the dynamics learner and the MPC controller in one process over "
        "real DDS topics, configured by the same parameter file as launch/sim.launch.py. Prints one line per "
        "episode and writes a run directory (CSV files, plots; the learner's data and models).",
    )
    parser.add_argument("config", help="parameter file, or the name of an installed one (e.g. cartpole_swingup)")
    parser.add_argument("--episodes", type=int, default=10, help="stop after this many episodes (default 10)")
    parser.add_argument("--mode", choices=("lockstep", "realtime"), default=None,
                        help="bridge and controller mode (default: as the config says)")
    parser.add_argument("--run-dir", type=Path, default=None, help="run directory (default runs/<config>-<time>)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the learner's data directory, resumed if it exists (default <run-dir>/learner)")
    parser.add_argument("--record", action="store_true", help="also record the run's topics to <run-dir>/bag")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import os

    from tqdm import tqdm

    from mbrl_ros.resources import config_path
    from mbrl_ros.runner import GraphConfigurationError, RunDirectoryError, RunOptions
    from mbrl_ros.runner import run as run_graph

    if args.episodes < 1:
        print("error: --episodes must be at least 1")
        return 2
    try:
        config = config_path(args.config)
    except FileNotFoundError as error:
        print(f"error: {error}")
        return 2
    # One process, one host: unless the caller chose otherwise, DDS stays on this machine.
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    options = RunOptions(config, args.episodes, args.mode, args.run_dir, args.data_dir, args.record)
    with tqdm(total=args.episodes, desc="episodes", unit="episode") as bar:
        def on_episode(record) -> None:
            bar.write(record.line(args.episodes))
            bar.update()

        try:
            run_dir = run_graph(options, on_episode)
        except KeyboardInterrupt:
            print("interrupted")
            return 130
        except (GraphConfigurationError, RunDirectoryError) as error:
            print(f"error: {error}")
            return 2
    print(f"run directory: {run_dir}")
    return 0
