"""``mbrl-ros planet``: PlaNet from pixels offline, on a simulated task (cartpole swing-up by default)."""

import argparse
import json
from pathlib import Path

PIXEL_CARTPOLE = "mbrl_ros.planet.tasks:CartpoleSwingUpPixels"  # as in mbrl_ros.planet.tasks (imports mujoco)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "planet", help="train PlaNet from pixels on a simulated task",
        description="Learns a latent dynamics model (RSSM) from 64x64 camera frames and plans in its latent space "
                    "with CEM (Hafner et al. 2019): seed episodes of random actions, then per episode some gradient "
                    "steps on sequence chunks and one episode collected with the planner. Writes OUTPUT/curve.csv "
                    "(one row per episode), OUTPUT/curve.png, OUTPUT/frames.png (decoded vs real frames), "
                    "OUTPUT/config.json and the model in OUTPUT/model (safetensors + JSON, kind rssm).")
    parser.add_argument("output", type=Path, help="run directory (created; must not hold a run already)")
    parser.add_argument("--task", default=PIXEL_CARTPOLE, help="task name or package.module:Class")
    parser.add_argument("--paper", action="store_true",
                        help="the paper's model, batch and planner sizes (for a GPU; CPU-sized otherwise)")
    parser.add_argument("--episode-length", type=int, help="control periods per episode (default: the task's)")
    parser.add_argument("--episodes", type=int, help="episodes collected with the planner after the seed episodes")
    parser.add_argument("--seed-episodes", type=int, help="episodes of random actions first")
    parser.add_argument("--action-repeat", type=int, help="control periods each action is held for")
    parser.add_argument("--train-steps", type=int, help="gradient steps before each collected episode")
    parser.add_argument("--batch-size", type=int, help="sequence chunks per gradient step")
    parser.add_argument("--chunk-length", type=int, help="frames per sequence chunk")
    parser.add_argument("--candidates", type=int, help="CEM candidates per iteration")
    parser.add_argument("--iterations", type=int, help="CEM iterations per plan")
    parser.add_argument("--top", type=int, help="CEM elites")
    parser.add_argument("--horizon", type=int, help="planning horizon (actions)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU")
    parser.set_defaults(func=run)
    return parser


def config_from_args(args: argparse.Namespace):
    """The :class:`~mbrl_ros.planet.training.PlanetConfig` the arguments describe."""
    import dataclasses

    from mbrl_ros.planet.training import PlanetConfig

    names = ("episode_length", "episodes", "seed_episodes", "action_repeat", "train_steps", "batch_size",
             "chunk_length")
    options = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    config = (PlanetConfig.paper if args.paper else PlanetConfig)(task=args.task, seed=args.seed, **options)
    planner = {name: getattr(args, name) for name in ("candidates", "iterations", "top", "horizon")
               if getattr(args, name) is not None}
    if planner:
        config.planner = dataclasses.replace(config.planner, **planner)
    return config


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from mbrl_ros.models import save_model
    from mbrl_ros.planet.training import CURVE_COLUMNS, PlanetTrainer, plot_curve, plot_frames
    from mbrl_ros.runs import CsvLog

    torch.set_num_threads(args.threads)
    if (args.output / "curve.csv").exists():
        print(f"error: {args.output} already holds a run (curve.csv); choose another directory")
        return 2
    try:
        config = config_from_args(args)
        trainer = PlanetTrainer(config, device=args.device)
    except (ValueError, KeyError, RuntimeError) as error:
        print(f"error: {error}")
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "config.json").write_text(json.dumps(config.as_dict(), indent=2))
    curve = CsvLog(args.output / "curve.csv", CURVE_COLUMNS)
    try:
        with tqdm(total=config.seed_episodes + config.episodes, desc="planet", unit="episode") as progress:
            for index, episode in enumerate(trainer.seed()):
                curve.write(episode=index, env_steps=trainer.env.control_periods * (index + 1) // config.seed_episodes,
                            policy="random", image_loss="", reward_loss="", kl="", train_time_s=0.0,
                            collect_time_s="", plan_time_ms="", **{"return": episode.episode_return})
                progress.update()
            for index in range(config.seed_episodes, config.seed_episodes + config.episodes):
                row = trainer.iteration()
                curve.write(episode=index, **row)
                progress.set_postfix(ret=f"{row['return']:.1f}", image=f"{row['image_loss']:.1f}",
                                     plan_ms=f"{row['plan_time_ms']:.0f}")
                progress.update()
        save_model(trainer.model, args.output / "model",
                   extra={"task": config.task, "action_repeat": config.action_repeat})
        real, decoded, context = trainer.predict_frames(trainer.buffer.episodes[-1])
        plot_frames(real, decoded, context, args.output / "frames.png")
        plot_curve(args.output / "curve.csv", args.output / "curve.png")
    finally:
        curve.close()
        trainer.close()
    print(f"wrote {args.output}: curve.csv, curve.png, frames.png, model/")
    return 0
