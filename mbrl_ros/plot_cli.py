"""``mbrl-ros plot RUN_DIR``: redraw a run's learning curve, plan-latency histogram and missed-tick timeline."""

import argparse


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("plot", help="redraw a run's plots from its CSV files",
                                   description=__doc__.split(": ", 1)[1])
    parser.add_argument("run_dir", help="a run directory written by 'mbrl-ros up'")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mbrl_ros.runs import plot_run

    if not Path(args.run_dir).is_dir():
        print(f"error: {args.run_dir} is not a directory")
        return 1
    written = plot_run(args.run_dir)
    if not written:
        print(f"error: {args.run_dir} holds no episodes.csv, plans.csv or ticks.csv to plot")
        return 1
    for path in written:
        print(path)
    return 0
