"""The ``mbrl-ros`` command: one subcommand per job (``mbrl-ros --help`` lists them).

Each subcommand lives in the module named in :data:`SUBCOMMANDS`, which provides
``register(subparsers) -> argparse.ArgumentParser`` and sets ``func`` (args -> exit code) as a default.
Those modules import heavy dependencies (torch, rclpy, mujoco) inside ``func`` only, so ``--help`` stays fast.
"""

import argparse
import importlib

SUBCOMMANDS: tuple[str, ...] = (
    "mbrl_ros.models.train_command",
    "mbrl_ros.offline.cli",
    "mbrl_ros.planet.cli",
    "mbrl_ros.plot_cli",
    "mbrl_ros.recording_cli",
    "mbrl_ros.tabular.cli",
    "mbrl_ros.tasks.describe",
    "mbrl_ros.up_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mbrl-ros", description="Model-based RL and sampling-based MPC for robots, with ROS 2."
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in SUBCOMMANDS:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return args.func(args)
