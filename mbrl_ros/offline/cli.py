"""``mbrl-ros train --bag PATH --config CONFIG``: train the configured dynamics model from a recorded bag."""

import argparse
import math
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train", help="train the configured dynamics model from a recorded bag",
        description="Builds transitions from a rosbag2 bag exactly as the dynamics learner builds them from its "
        "topics, trains the model of the parameter file's dynamics_learner section (model, trainer) and writes a "
        "learner data directory (transitions/, models/v000001/, training.csv/.png; the learner continues from it "
        "with data_dir:=OUTPUT, the controller starts from it with model_dir:=OUTPUT) and report/: held-out "
        "one-step error per state dimension and open-loop error against the horizon, as CSV and PNG.")
    parser.add_argument("--bag", type=Path, required=True, help="the bag directory (e.g. from 'mbrl-ros record')")
    parser.add_argument("--config", type=Path, required=True,
                        help="the parameter file (ros__parameters form) of the run, e.g. config/cartpole_swingup.yaml")
    parser.add_argument("--output", type=Path, default=None,
                        help="learner data directory to create (default: <bag>-model next to the bag)")
    parser.add_argument("--holdout", type=float, default=0.2,
                        help="share of the latest transitions of each robot kept out of training for the report")
    parser.add_argument("--horizon", type=int, default=None,
                        help="steps of the open-loop evaluation (default: the controller's mpc.horizon, else 20)")
    parser.add_argument("--start", type=float, default=-math.inf,
                        help="use only transitions from states stamped at or after this time (s)")
    parser.add_argument("--end", type=float, default=math.inf,
                        help="use only transitions to states stamped at or before this time (s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from mbrl_ros.offline import learner_settings, train_from_bag

    torch.set_num_threads(args.threads)
    output = args.output or args.bag.with_name(f"{args.bag.name}-model")
    try:
        settings = learner_settings(args.config)
        result = train_from_bag(args.bag, settings, output, args.holdout, args.horizon, start=args.start,
                                end=args.end)
    except ValueError as error:
        print(f"error: {error}")
        return 2
    for line in result.data.warnings():
        print(f"warning: {line}")
    print(f"{len(result.data)} transitions from {args.bag}: trained on {result.train_transitions}, held out "
          f"{result.holdout_transitions}; validation NLL {result.validation_nll:.4g}")
    if result.one_step is not None:
        ratio = result.one_step.rmse / np.maximum(result.one_step.baseline_rmse, 1e-12)
        print(f"held-out one-step RMSE / baseline: median {np.median(ratio):.3g}, worst {np.max(ratio):.3g} "
              f"({result.one_step.labels[int(np.argmax(ratio))]})")
        reached = np.flatnonzero(result.open_loop.windows)
        if len(reached):
            h = reached[-1]
            print(f"open-loop normalised RMSE at {h + 1} steps: {result.open_loop.normalized_rmse[h]:.3g} "
                  f"(baseline {result.open_loop.baseline_normalized_rmse[h]:.3g})")
    print(f"model: {result.model_dir}; report: {result.output / 'report'}")
    return 0
