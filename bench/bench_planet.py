"""PlaNet benchmarks (issue 8): cart-pole swing-up from pixels, against the PlaNet paper and a matmul bound.

    .venv/bin/python bench/bench_planet.py                  # L1 (1 seed, 30 episodes) and L2
    .venv/bin/python bench/bench_planet.py --seeds 3        # the learning curve over 3 seeds
    .venv/bin/python bench/bench_planet.py --quick          # a short smoke run
    .venv/bin/python bench/bench_planet.py --device cuda --paper   # the paper's sizes, on a GPU

L1  learning: return per episode against environment steps on cart-pole swing-up from 64 x 64 frames
    (the CPU-sized :class:`PlanetConfig` unless ``--paper``), CPU time per episode (training and
    collection apart), and the final return as a fraction of the task's best (200 control periods of reward
    at most 1: 200) against the paper's cart-pole swing-up result, 821 of 1000 (PlaNet, Hafner et al. 2019,
    Table 1). Curves go to ``--output`` (one CSV and PNG per seed; default bench/results/planet).
L2  plan latency at the paper's planner config (horizon 12, 1000 candidates, 10 iterations, top 100) with the
    paper's model sizes (H 200, Z 30, 200-wide MLPs; latency does not depend on the weights), against the
    time the same matmuls take as plain batched matmuls (``mlp_matmul_roofline``): the plan's efficiency.
"""

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import mlp_matmul_roofline, report, set_threads

from mbrl_ros.models.latent import LatentDynamicsModel
from mbrl_ros.planet import LatentPlanner, LatentPlannerConfig, PlanetAgent
from mbrl_ros.planet.training import CURVE_COLUMNS, PlanetConfig, PlanetTrainer, plot_curve
from mbrl_ros.runs import CsvLog

PAPER_RETURN_FRACTION = 821 / 1000  # PlaNet's cart-pole swing-up return over its 1000-step maximum
PAPER_MODEL = {"deterministic": 200, "stochastic": 30, "hidden": 200}


def rssm_step_layers(action_dim: int, deterministic: int, stochastic: int, hidden: int) -> list[tuple[int, int]]:
    """(in, out) of the matmuls of one imagined step plus its reward: input MLP, GRU, prior, reward head."""
    return [(stochastic + action_dim, hidden), (hidden, 3 * deterministic), (deterministic, 3 * deterministic),
            (deterministic, hidden), (hidden, 2 * stochastic),
            (deterministic + stochastic, hidden), (hidden, hidden), (hidden, 1)]


def plan_latency(device: str, plans: int) -> None:
    """L2: median plan time at the paper's config against the matmul roofline of the same layers."""
    torch.manual_seed(0)
    model = LatentDynamicsModel(1, **PAPER_MODEL).to(device).eval()
    config = LatentPlannerConfig()
    agent = PlanetAgent(model, LatentPlanner(model, config, torch.Generator(device).manual_seed(0)))
    frame = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8, device=device)
    agent.act(frame)  # warm-up
    times = []
    for _ in tqdm(range(plans), desc="L2 plans", leave=False):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        agent.act(frame)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    latency = statistics.median(times)
    layers = rssm_step_layers(1, **PAPER_MODEL)
    steps = config.horizon * config.iterations
    flops = steps * sum(2 * config.candidates * fan_in * fan_out for fan_in, fan_out in layers)
    bound = flops / mlp_matmul_roofline(layers, config.candidates, backward=False) if device == "cpu" else float("nan")
    print(f"L2 plan latency at the paper's config on {device}: median {1e3 * latency:.1f} ms over {plans} plans "
          f"({steps} batched RSSM steps of {config.candidates} candidates, {flops / 1e9:.2f} GFLOP)")
    if device == "cpu":
        report("L2 plan efficiency (matmul-roofline time / plan time)", bound, latency, 0.5, "plan time", " s")


def learning(config: PlanetConfig, seeds: int, device: str, output: Path) -> None:
    """L1: learning curves over ``seeds`` seeds, CPU time per episode, final return against the paper's."""
    output.mkdir(parents=True, exist_ok=True)
    finals, random_returns = [], []
    for seed in range(seeds):
        seed_config = dataclasses.replace(config, seed=seed)
        trainer = PlanetTrainer(seed_config, device=device)
        path = output / f"curve_seed{seed}.csv"
        path.unlink(missing_ok=True)
        curve = CsvLog(path, (*CURVE_COLUMNS, "cpu_time_s"))
        returns = []
        try:
            start = time.process_time()
            for index, episode in enumerate(trainer.seed()):
                random_returns.append(episode.episode_return)
                curve.write(episode=index, env_steps=trainer.env.control_periods * (index + 1) // config.seed_episodes,
                            policy="random", image_loss="", reward_loss="", kl="", train_time_s=0.0,
                            collect_time_s="", plan_time_ms="", cpu_time_s=time.process_time() - start,
                            **{"return": episode.episode_return})
            for index in tqdm(range(config.episodes), desc=f"L1 seed {seed}", unit="episode"):
                start = time.process_time()
                row = trainer.iteration()
                curve.write(episode=config.seed_episodes + index, cpu_time_s=time.process_time() - start, **row)
                returns.append(row["return"])
                tqdm.write(f"  episode {config.seed_episodes + index}: steps {row['env_steps']}, return "
                           f"{row['return']:.1f}, image loss {row['image_loss']:.0f}, "
                           f"train {row['train_time_s']:.0f} s, collect {row['collect_time_s']:.0f} s")
        finally:
            curve.close()
            trainer.close()
        plot_curve(path, output / f"curve_seed{seed}.png")
        finals.append(float(np.mean(returns[-3:])))
    best = trainer.env.simulation.task.episode_length if config.episode_length is None else config.episode_length
    print(f"L1 returns: random {np.mean(random_returns):.1f}, final (mean of the last 3 episodes) per seed "
          f"{[round(r, 1) for r in finals]}, best possible {best}")
    report("L1 final return as a fraction of the best, against the paper's", float(np.mean(finals)) / best,
           PAPER_RETURN_FRACTION, 0.9, "PlaNet paper")


def main() -> None:
    parser = argparse.ArgumentParser(description="PlaNet benchmarks (L1 learning, L2 plan latency).")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--only", choices=["l1", "l2"], action="append", help="run only these (repeatable)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds of the learning curve (L1)")
    parser.add_argument("--episodes", type=int, default=30, help="episodes collected with the planner (L1)")
    parser.add_argument("--paper", action="store_true", help="the paper's model and training sizes in L1 (GPU)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    parser.add_argument("--output", type=Path, default=Path("bench/results/planet"), help="curves' directory")
    args = parser.parse_args()
    set_threads(args.threads)
    only = set(args.only or ["l1", "l2"])
    if "l2" in only:
        plan_latency(args.device, plans=2 if args.quick else 10)
    if "l1" in only:
        config = (PlanetConfig.paper if args.paper else PlanetConfig)(episodes=args.episodes)
        if args.quick:
            quick_planner = LatentPlannerConfig(candidates=100, iterations=3, top=10)
            config = dataclasses.replace(config, episodes=2, seed_episodes=2, episode_length=40, train_steps=5,
                                         chunk_length=10, planner=quick_planner)
        learning(config, args.seeds, args.device, args.output)


if __name__ == "__main__":
    main()
