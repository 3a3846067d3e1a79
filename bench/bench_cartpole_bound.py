"""An upper bound on the cart-pole swing-up's return, whatever the controller: what the P3 goals can ask.

The return is a sum over the episode's steps of the reward ``r_t``; no action sequence gets more at step ``t``
than the most that any action sequence gets at step ``t`` alone. So ``sum_t max r_t`` bounds the return from
above. Each ``max r_t`` is found by the cross-entropy method over the ``t + 1`` actions up to that step,
rolled out in MuJoCo itself from the episode's true start (``bench_oracle.py``'s ``SimulatorObjective``).
No step's reward exceeds 1 (the
upright term's most, with no action cost), so the search may stop at any step and bound every later one by 1;
it stops where the pole can first be upright (``max r_t`` within ``--tolerance`` of 1). Printed per episode
seed, with the best reward of each step before that.

The maximisation is a search, so a bound is only as good as its search: ``--population`` and ``--iterations``
set its size; a larger search giving the same bound is the check (on episode seed 1, 1000 x 30 gave 191.9 where
the default 500 x 25 gives 191.8).

    .venv/bin/python bench/bench_cartpole_bound.py [--seeds 0 1 2] [--population 500] [--iterations 25]
"""

import argparse
import os
import time

import numpy as np
import torch
from bench_oracle import SimulatorObjective

from mbrl_ros.sim.episode import TaskSimulation

ELITE_FRACTION = 0.1
SMOOTHING = 0.5  # the weight of the previous iteration's mean and standard deviation
RESTARTS = 2  # the first from a zero mean, the others from a uniform random one


def true_dynamics(seed: int) -> SimulatorObjective:
    """The true dynamics from the start of the cart-pole episode of ``seed``: its ``step_rewards`` gives the
    rewards (N, T) of action sequences (N, T, 1)."""
    episode = TaskSimulation("cartpole_swingup")
    episode.reset(seed)
    return SimulatorObjective(episode, threads=os.cpu_count() or 1)


def best_step_reward(objective: SimulatorObjective, steps: int, population: int, iterations: int,
                     rng: np.random.Generator) -> float:
    """The most reward found at the last of ``steps`` steps, over action sequences (steps, 1), by CEM."""
    low, high = (np.asarray(bound, dtype=np.float64) for bound in objective.task.action_bounds)
    elites = max(2, int(ELITE_FRACTION * population))
    best = -np.inf
    for restart in range(RESTARTS):
        mean = np.zeros((steps, 1)) if restart == 0 else rng.uniform(low, high, (steps, 1))
        std = np.full((steps, 1), float(np.max(high - low)) / 2)
        for _ in range(iterations):
            samples = np.clip(mean + std * rng.standard_normal((population, steps, 1)), low, high)
            last = objective.step_rewards(torch.from_numpy(samples))[0][:, -1].numpy()
            elite = samples[np.argsort(last)[-elites:]]
            mean = SMOOTHING * mean + (1 - SMOOTHING) * elite.mean(0)
            std = SMOOTHING * std + (1 - SMOOTHING) * elite.std(0)
            best = max(best, float(last.max()))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="episode seeds (their starts)")
    parser.add_argument("--population", type=int, default=500)
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--tolerance", type=float, default=1e-3, help="how close to 1 counts as upright")
    args = parser.parse_args()
    bounds = []
    for seed in args.seeds:
        objective, started = true_dynamics(seed), time.monotonic()
        rng = np.random.default_rng(seed)
        length = objective.task.episode_length
        per_step = []
        while len(per_step) < length and (not per_step or per_step[-1] < 1 - args.tolerance):
            per_step.append(best_step_reward(objective, len(per_step) + 1, args.population, args.iterations, rng))
        bounds.append(sum(per_step) + (length - len(per_step)))
        print(f"  seed {seed}: return <= {bounds[-1]:.1f} of {length} (upright from step {len(per_step)}; best "
              f"reward of each step before: {' '.join(f'{r:.2f}' for r in per_step)}) "
              f"[{time.monotonic() - started:.0f} s]", flush=True)
    print(f"cart-pole swing-up: no controller's return exceeds {max(bounds):.1f} on these starts "
          f"(P3's goals: 180 by episode 5, 195 by episode 10)")


if __name__ == "__main__":
    main()
