"""Dyna-Q (Sutton & Barto, section 8.2): Q-learning from real steps plus planning steps on a learned model.

Each real step does direct RL (one Q-learning update), model learning (the transition is counted) and
``n`` planning updates on transitions simulated by the learned model from previously seen state-action
pairs. ``n = 0`` is plain one-step Q-learning. The learned model is the maximum-likelihood tabular model
(counts of next states and the mean reward of each pair): on a deterministic environment it is the book's
"last observed outcome" model, and it stays correct on stochastic ones.

Q and the model are plain Python lists internally: a planning update touches a handful of scalars, where
numpy's per-call overhead would dominate.
"""

from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from mbrl_ros.tabular.mdp import TabularMDP


class TabularEnv:
    """Episodes of an MDP, sampled: :meth:`reset` to a start state, then :meth:`step` until terminated.

    A step returns the expected reward ``R[s, a]`` (the MDP holds no more); action values, and so what
    Q-learning converges to, are the same as with sampled rewards of that mean.

    Args:
        mdp: the MDP to sample.
        start_states: (K,) int, episodes start in one of them, uniformly.
        seed: seed of the environment's randomness (start states and transitions).
    """

    def __init__(self, mdp: TabularMDP, start_states: np.ndarray, seed: int | np.random.SeedSequence = 0):
        start_states = np.asarray(start_states)
        if start_states.ndim != 1 or len(start_states) == 0 or not np.issubdtype(start_states.dtype, np.integer):
            raise ValueError(f"start_states must be a non-empty 1-D integer array, got {start_states!r}")
        if np.any((start_states < 0) | (start_states >= mdp.n_states)) or np.any(mdp.terminal[start_states]):
            raise ValueError(f"start_states must be non-terminal states in [0, {mdp.n_states})")
        self.mdp = mdp
        self._starts = start_states.tolist()
        self._rng = np.random.default_rng(seed)
        # Per (s, a): the next states of positive probability and their cumulative probabilities.
        self._successors = [[np.flatnonzero(row).tolist() for row in state_rows] for state_rows in mdp.transitions]
        self._cumulative = [
            [np.cumsum(row[successors]).tolist() for row, successors in zip(state_rows, state_successors, strict=True)]
            for state_rows, state_successors in zip(mdp.transitions, self._successors, strict=True)
        ]
        self._rewards = mdp.rewards.tolist()
        self._terminal = mdp.terminal.tolist()
        self._state: int | None = None

    def reset(self) -> int:
        """Starts an episode; returns its first state."""
        self._state = self._starts[int(self._rng.integers(len(self._starts)))]
        return self._state

    def step(self, action: int) -> tuple[int, float, bool]:
        """Takes ``action``; returns (next state, reward, whether the episode terminated)."""
        if self._state is None or self._terminal[self._state]:
            raise RuntimeError("no episode under way: call reset() first")
        if not 0 <= action < self.mdp.n_actions:
            raise ValueError(f"action must lie in [0, {self.mdp.n_actions}), got {action}")
        state = self._state
        successors, cumulative = self._successors[state][action], self._cumulative[state][action]
        draw = self._rng.random() * cumulative[-1]
        index = 0
        while index < len(successors) - 1 and draw >= cumulative[index]:
            index += 1
        self._state = successors[index]
        return self._state, self._rewards[state][action], self._terminal[self._state]


class TabularModel:
    """A tabular model learned from transitions: next-state counts and mean reward of each (s, a).

    Args:
        n_states: S.
        n_actions: A.
    """

    def __init__(self, n_states: int, n_actions: int):
        self.n_states, self.n_actions = n_states, n_actions
        self.observed_states: list[int] = []  # states acted in, in order of first visit
        self.actions_taken: list[list[int]] = [[] for _ in range(n_states)]  # per state, in order of first use
        self._next_states: dict[tuple[int, int], list[int]] = {}
        self._next_counts: dict[tuple[int, int], list[int]] = {}
        self._visits: dict[tuple[int, int], int] = {}
        self._reward_sums: dict[tuple[int, int], float] = {}
        self._terminal: set[int] = set()

    def update(self, state: int, action: int, reward: float, next_state: int, terminated: bool) -> None:
        """Counts one observed transition."""
        pair = (state, action)
        if pair not in self._visits:
            if not self.actions_taken[state]:
                self.observed_states.append(state)
            self.actions_taken[state].append(action)
            self._next_states[pair], self._next_counts[pair] = [], []
            self._visits[pair], self._reward_sums[pair] = 0, 0.0
        next_states, counts = self._next_states[pair], self._next_counts[pair]
        if next_state in next_states:
            counts[next_states.index(next_state)] += 1
        else:
            next_states.append(next_state)
            counts.append(1)
        self._visits[pair] += 1
        self._reward_sums[pair] += reward
        if terminated:
            self._terminal.add(next_state)

    def sample(self, state: int, action: int, uniform: float) -> tuple[float, int, bool]:
        """A simulated transition from an observed pair: (mean reward, next state, terminated).

        Args:
            uniform: a draw from U[0, 1) that picks the next state in proportion to its count.
        """
        pair = (state, action)
        visits = self._visits[pair]
        remaining = uniform * visits
        next_states, counts = self._next_states[pair], self._next_counts[pair]
        index = 0
        while index < len(counts) - 1 and remaining >= counts[index]:
            remaining -= counts[index]
            index += 1
        next_state = next_states[index]
        return self._reward_sums[pair] / visits, next_state, next_state in self._terminal

    def estimate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model as arrays: (P_hat (S, A, S), R_hat (S, A), visits (S, A) int); zero where never visited."""
        transitions = np.zeros((self.n_states, self.n_actions, self.n_states))
        rewards = np.zeros((self.n_states, self.n_actions))
        visits = np.zeros((self.n_states, self.n_actions), dtype=np.int64)
        for (state, action), count in self._visits.items():
            visits[state, action] = count
            rewards[state, action] = self._reward_sums[state, action] / count
            for next_state, next_count in zip(
                self._next_states[state, action], self._next_counts[state, action], strict=True
            ):
                transitions[state, action, next_state] = next_count / count
        return transitions, rewards, visits


class DynaQ:
    """Tabular Dyna-Q with epsilon-greedy exploration (ties broken at random) and Q initialised to zero.

    Args:
        n_states: S.
        n_actions: A.
        planning_steps: n, planning updates per real step (0: plain Q-learning).
        step_size: alpha in (0, 1].
        epsilon: probability in [0, 1] of a uniformly random action.
        discount: gamma in [0, 1].
        seed: seed of the agent's randomness (exploration and planning draws).
    """

    def __init__(
        self,
        n_states: int,
        n_actions: int,
        planning_steps: int,
        step_size: float = 0.1,
        epsilon: float = 0.1,
        discount: float = 0.95,
        seed: int | np.random.SeedSequence = 0,
    ):
        if n_states < 1 or n_actions < 1:
            raise ValueError(f"need at least one state and one action, got S={n_states}, A={n_actions}")
        if planning_steps < 0:
            raise ValueError(f"planning_steps must be >= 0, got {planning_steps}")
        if not 0.0 < step_size <= 1.0:
            raise ValueError(f"step_size must lie in (0, 1], got {step_size}")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
        if not 0.0 <= discount <= 1.0:
            raise ValueError(f"discount must lie in [0, 1], got {discount}")
        self.n_actions = n_actions
        self.planning_steps = planning_steps
        self.step_size, self.epsilon, self.discount = step_size, epsilon, discount
        self.model = TabularModel(n_states, n_actions)
        self._q = [[0.0] * n_actions for _ in range(n_states)]
        # Separate streams for acting and for planning: until the first non-zero reward, Q stays zero and the
        # agent acts the same whatever n is (the book's Figure 8.2 shares its first episode across n).
        sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        acting_seed, planning_seed = sequence.spawn(2)
        self._acting_rng = np.random.default_rng(acting_seed)
        self._planning_rng = np.random.default_rng(planning_seed)

    @property
    def q(self) -> np.ndarray:
        """(S, A) action values, a copy."""
        return np.array(self._q)

    def act(self, state: int) -> int:
        """An epsilon-greedy action in ``state``."""
        if self._acting_rng.random() < self.epsilon:
            return int(self._acting_rng.integers(self.n_actions))
        row = self._q[state]
        best = max(row)
        ties = [action for action, value in enumerate(row) if value == best]
        return ties[0] if len(ties) == 1 else ties[int(self._acting_rng.integers(len(ties)))]

    def learn(self, state: int, action: int, reward: float, next_state: int, terminated: bool) -> None:
        """One real step: direct RL update, model update, then ``planning_steps`` simulated updates."""
        self._update(state, action, reward, next_state, terminated)
        self.model.update(state, action, reward, next_state, terminated)
        if self.planning_steps == 0:
            return
        model, states, actions_taken = self.model, self.model.observed_states, self.model.actions_taken
        for u_state, u_action, u_next in self._planning_rng.random((self.planning_steps, 3)).tolist():
            planned_state = states[int(u_state * len(states))]
            actions = actions_taken[planned_state]
            planned_action = actions[int(u_action * len(actions))]
            self._update(planned_state, planned_action, *model.sample(planned_state, planned_action, u_next))

    def run_episode(self, env: TabularEnv, max_steps: int = 100_000) -> int:
        """Runs one episode on ``env``, learning as it goes; returns its number of real steps.

        An episode not terminated after ``max_steps`` is cut there (and counts ``max_steps``).
        """
        state = env.reset()
        for step in range(1, max_steps + 1):
            action = self.act(state)
            next_state, reward, terminated = env.step(action)
            self.learn(state, action, reward, next_state, terminated)
            if terminated:
                return step
            state = next_state
        return max_steps

    def _update(self, state: int, action: int, reward: float, next_state: int, terminated: bool) -> None:
        target = reward if terminated else reward + self.discount * max(self._q[next_state])
        row = self._q[state]
        row[action] += self.step_size * (target - row[action])


def dyna_q_steps_per_episode(
    mdp: TabularMDP,
    start_states: np.ndarray,
    planning_steps: int,
    episodes: int,
    seed: int = 0,
    step_size: float = 0.1,
    epsilon: float = 0.1,
    max_steps: int = 100_000,
) -> np.ndarray:
    """One Dyna-Q run of ``episodes`` episodes from a fresh agent (discount from the MDP).

    Returns:
        (episodes,) int, real steps of each episode: the curves of the book's Figure 8.2.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env_seed, agent_seed = np.random.SeedSequence(seed).spawn(2)
    env = TabularEnv(mdp, start_states, env_seed)
    agent = DynaQ(mdp.n_states, mdp.n_actions, planning_steps, step_size, epsilon, mdp.discount, agent_seed)
    return np.array([agent.run_episode(env, max_steps) for _ in range(episodes)])


def dyna_q_curves(
    mdp: TabularMDP,
    start_states: np.ndarray,
    planning_steps: Sequence[int],
    episodes: int,
    runs: int,
    seed: int = 0,
    step_size: float = 0.1,
    epsilon: float = 0.1,
    max_steps: int = 100_000,
    progress: bool = True,
) -> dict[int, np.ndarray]:
    """Steps per episode of independent Dyna-Q runs for several n, with a progress bar.

    Run r uses seed ``seed + r`` for every n, so the runs of different n share their first episode.

    Returns:
        For each n of ``planning_steps``: (runs, episodes) int, real steps of each episode of each run.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    curves = {n: np.zeros((runs, episodes), dtype=np.int64) for n in planning_steps}
    with tqdm(total=len(curves) * runs, desc="Dyna-Q runs", unit="run", disable=not progress) as bar:
        for n, steps in curves.items():
            bar.set_postfix(n=n)
            for run in range(runs):
                steps[run] = dyna_q_steps_per_episode(
                    mdp, start_states, n, episodes, seed + run, step_size, epsilon, max_steps
                )
                bar.update()
    return curves
