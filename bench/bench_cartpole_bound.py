"""An upper bound on the cart-pole swing-up's return, whatever the controller: what the P3 goals can ask.

The return is a sum over the episode's steps of the reward ``r_t``; no action sequence gets more at step ``t``
than the most that any action sequence gets at step ``t`` alone. So ``sum_t max r_t`` bounds the return from
above. Each ``max r_t`` is found by the cross-entropy method over the ``t + 1`` actions up to that step,
rolled out in MuJoCo itself (``mujoco.rollout``) from the episode's true start. No step's reward exceeds 1 (the
upright term's most, with no action cost), so the search may stop at any step and bound every later one by 1;
it stops where the pole can first be upright (``max r_t`` within ``--tolerance`` of 1). Printed per episode
seed, with the best reward of each step before that.

The maximisation is a search, so a bound is only as good as its search: ``--population`` and ``--iterations``
set its size; a larger search giving the same bound is the check (on episode seed 1, 1000 x 30 gave 191.9 where
the default 500 x 25 gives 191.8).

    .venv/bin/python bench/bench_cartpole_bound.py [--seeds 0 1 2] [--population 500] [--iterations 25]
"""

import argparse
import time

import mujoco
import numpy as np
import torch
from mujoco import rollout

from mbrl_ros.sim.episode import TaskSimulation

FULL_PHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS
ELITE_FRACTION = 0.1
SMOOTHING = 0.5  # the weight of the previous iteration's mean and standard deviation
RESTARTS = 2  # the first from a zero mean, the others from a uniform random one


class StepRewards:
    """The rewards (N, T) of action sequences (N, T, 1) from one cart-pole episode's start, in MuJoCo itself."""

    def __init__(self, seed: int):
        self.episode = TaskSimulation("cartpole_swingup")
        self.episode.reset(seed)
        self.task, sim = self.episode.task, self.episode.sim
        self.model, self.frame_skip = sim.model, sim.frame_skip
        self.low, self.high = (np.asarray(bound, dtype=np.float64) for bound in self.task.action_bounds)
        self.start = np.empty(mujoco.mj_stateSize(self.model, FULL_PHYSICS))
        mujoco.mj_getState(self.model, sim.data, self.start, FULL_PHYSICS)
        self.joints = slice(1, 1 + self.model.nq + self.model.nv)  # (qpos, qvel) after the physics state's time
        self.first = torch.as_tensor(self.episode.state()).reshape(1, 1, -1)
        if not np.allclose(self.start[self.joints], self.first.numpy().ravel()):
            raise RuntimeError("the cart-pole's task state is no longer (qpos, qvel): this bound reads it so")
        self.datas = [mujoco.MjData(self.model) for _ in range(2)]

    def __call__(self, sequences: np.ndarray) -> np.ndarray:
        count = len(sequences)
        actions = np.clip(sequences, self.low, self.high)
        physics, _ = rollout.rollout(self.model, self.datas, np.tile(self.start, (count, 1)),
                                     actions.repeat(self.frame_skip, axis=1), persistent_pool=True)
        after = torch.from_numpy(physics[:, self.frame_skip - 1::self.frame_skip, self.joints])
        before = torch.cat([self.first.expand(count, 1, -1), after[:, :-1]], dim=1)
        dim = after.shape[-1]
        rewards = self.task.reward(before.reshape(-1, dim), torch.from_numpy(actions).reshape(-1, actions.shape[-1]),
                                   after.reshape(-1, dim))
        return rewards.reshape(count, -1).numpy()


def best_step_reward(rewards: StepRewards, steps: int, population: int, iterations: int,
                     rng: np.random.Generator) -> float:
    """The most reward found at the last of ``steps`` steps, over action sequences (steps, 1), by CEM."""
    low, high = rewards.low, rewards.high
    elites = max(2, int(ELITE_FRACTION * population))
    best = -np.inf
    for restart in range(RESTARTS):
        mean = np.zeros((steps, 1)) if restart == 0 else rng.uniform(low, high, (steps, 1))
        std = np.full((steps, 1), float(np.max(high - low)) / 2)
        for _ in range(iterations):
            samples = np.clip(mean + std * rng.standard_normal((population, steps, 1)), low, high)
            last = rewards(samples)[:, -1]
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
        rewards, started = StepRewards(seed), time.monotonic()
        rng = np.random.default_rng(seed)
        length = rewards.task.episode_length
        per_step = []
        while len(per_step) < length and (not per_step or per_step[-1] < 1 - args.tolerance):
            per_step.append(best_step_reward(rewards, len(per_step) + 1, args.population, args.iterations, rng))
        bounds.append(sum(per_step) + (length - len(per_step)))
        print(f"  seed {seed}: return <= {bounds[-1]:.1f} of {length} (upright from step {len(per_step)}; best "
              f"reward of each step before: {' '.join(f'{r:.2f}' for r in per_step)}) "
              f"[{time.monotonic() - started:.0f} s]", flush=True)
    print(f"cart-pole swing-up: no controller's return exceeds {max(bounds):.1f} on these starts "
          f"(P3's goals: 180 by episode 5, 195 by episode 10)")


if __name__ == "__main__":
    main()
