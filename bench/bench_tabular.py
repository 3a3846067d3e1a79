"""Tabular model-based RL: vectorised dynamic programming and list-based Dyna-Q against plain ports, same run.

    .venv/bin/python bench/bench_tabular.py            # the figures (about a minute on 2 cores)
    .venv/bin/python bench/bench_tabular.py --quick    # a smoke run (seconds)

No peer library has tabular methods, so each figure compares against the straightforward implementation of
the same algorithm, measured side by side, and checks that both compute the same thing:

- T1, value-iteration sweeps per second on a random 40x40 maze (~1100 states): ours (one numpy expression per
  sweep) against the book's per-state loop over each action's successors (goal >= 10). Values must agree.
- T2, Dyna-Q real steps per second with n = 50 on the Dyna maze: ours (Q as Python lists) against the same
  agent with Q as a numpy array, the obvious port (goal >= 1.5). Both must produce identical episodes.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report

from mbrl_ros.tabular import DynaQ, TabularEnv, TabularMDP, dyna_maze, make_gridworld, value_iteration


def random_maze(size: int, seed: int) -> TabularMDP:
    rng = np.random.default_rng(seed)
    cells = rng.choice(np.array(list(".#")), size=(size, size), p=[0.7, 0.3])
    cells[0, 0], cells[-1, -1] = "S", "G"
    text = "\n".join("".join(row) for row in cells)
    return make_gridworld(text, step_reward=-1.0, goal_reward=0.0, discount=0.95, slip=0.1).mdp


def loop_value_iteration_sweep(mdp: TabularMDP, successors: list, values: list[float]) -> list[float]:
    """One synchronous sweep the way the book's pseudocode reads: for each state, for each action, sum over s'."""
    rewards, discount = mdp.rewards.tolist(), mdp.discount
    new_values = []
    for state, actions in enumerate(successors):
        best = -float("inf")
        for action, outcomes in enumerate(actions):
            value = rewards[state][action] + discount * sum(p * values[s] for s, p in outcomes)
            best = max(best, value)
        new_values.append(best)
    return new_values


def bench_value_iteration(size: int, sweeps: int) -> bool:
    mdp = random_maze(size, seed=0)
    successors = [
        [[(int(s), float(row[s])) for s in np.flatnonzero(row)] for row in state_rows] for state_rows in mdp.transitions
    ]
    start = time.perf_counter()
    loop_values = [0.0] * mdp.n_states
    for _ in range(sweeps):
        loop_values = loop_value_iteration_sweep(mdp, successors, loop_values)
    loop_rate = sweeps / (time.perf_counter() - start)

    start = time.perf_counter()
    ours = value_iteration(mdp, tol=1e-300, max_sweeps=sweeps * 20)  # runs until no value changes at all
    ours_rate = ours.sweeps / (time.perf_counter() - start)
    check = value_iteration(mdp, tol=1e-300, max_sweeps=sweeps).values
    assert np.allclose(check, loop_values, atol=1e-9), "the two sweeps disagree"
    print(f"T1 maze {size}x{size}: {mdp.n_states} states, {mdp.n_actions} actions")
    return report("T1 value-iteration sweeps/s", ours_rate, loop_rate, 10.0, "per-state loop", "/s")


class ArrayDynaQ(DynaQ):
    """The same agent with Q as a numpy array: identical arithmetic and random draws, numpy indexing per update."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._array = np.zeros((self.model.n_states, self.n_actions))

    @property
    def q(self) -> np.ndarray:
        return self._array.copy()

    def act(self, state: int) -> int:
        if self._acting_rng.random() < self.epsilon:
            return int(self._acting_rng.integers(self.n_actions))
        row = self._array[state]
        ties = np.flatnonzero(row == row.max())
        return int(ties[0]) if len(ties) == 1 else int(ties[self._acting_rng.integers(len(ties))])

    def _update(self, state: int, action: int, reward: float, next_state: int, terminated: bool) -> None:
        target = reward if terminated else reward + self.discount * self._array[next_state].max()
        self._array[state, action] += self.step_size * (target - self._array[state, action])


def run_dyna(agent_class: type, runs: int, episodes: int) -> tuple[float, list[list[int]]]:
    world = dyna_maze()
    curves, steps, elapsed = [], 0, 0.0
    for seed in range(runs):
        env = TabularEnv(world.mdp, world.start_states, seed)
        agent = agent_class(world.mdp.n_states, world.mdp.n_actions, 50, discount=world.mdp.discount, seed=seed)
        start = time.perf_counter()
        curve = [agent.run_episode(env) for _ in range(episodes)]
        elapsed += time.perf_counter() - start
        curves.append(curve)
        steps += sum(curve)
    return steps / elapsed, curves


def bench_dyna(runs: int, episodes: int) -> bool:
    array_rate, array_curves = run_dyna(ArrayDynaQ, runs, episodes)
    ours_rate, our_curves = run_dyna(DynaQ, runs, episodes)
    assert our_curves == array_curves, "the list-based and array-based agents took different episodes"
    print(f"T2 Dyna maze, n = 50: {runs} runs x {episodes} episodes, {sum(map(sum, our_curves))} real steps each way")
    return report("T2 Dyna-Q real steps/s (n = 50)", ours_rate, array_rate, 1.5, "numpy-array Q", "/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run with small sizes")
    args = parser.parse_args()
    met = bench_value_iteration(size=15 if args.quick else 40, sweeps=5 if args.quick else 20)
    met &= bench_dyna(runs=2 if args.quick else 10, episodes=10 if args.quick else 30)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
