"""``mbrl-ros plot RUN_DIR``: redraw a run's learning curve, plan-latency histogram and missed-tick timeline.

Also redraws the learner's training curves, and given the output of ``mbrl-ros train`` its training curves and
its report (one-step and open-loop errors).
"""

import argparse


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("plot", help="redraw a run's plots from its CSV files",
                                   description=__doc__.split(": ", 1)[1])
    parser.add_argument("run_dir", help="a run directory written by 'mbrl-ros up', or an 'mbrl-ros train' output")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mbrl_ros.runs import plot_run

    if not Path(args.run_dir).is_dir():
        print(f"error: {args.run_dir} is not a directory")
        return 1
    try:
        written = plot_run(args.run_dir)
    except ValueError as error:
        print(f"error: {error}")
        return 1
    if not written:
        print(f"error: {args.run_dir} holds no episodes.csv, plans.csv, ticks.csv, training.csv or report/ to plot")
        return 1
    for path in written:
        print(path)
    return 0
