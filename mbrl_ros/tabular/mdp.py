"""Finite MDPs as arrays: a transition tensor ``P[s, a, s']`` and expected rewards ``R[s, a]``.

Terminal states are absorbing with zero reward (Sutton & Barto's convention for episodic tasks), so the
dynamic-programming code needs no special case for them: their values stay 0.
"""

from dataclasses import dataclass, field

import numpy as np

_PROBABILITY_ATOL = 1e-8  # how far a row of P may sum from 1 (rounding in hand-written or computed tables)
# Backups gather over successor lists when rows have at most 1/_SPARSE_RATIO of S non-zeros: a gather costs
# roughly that many times a matrix-vector product's multiply-add on these CPUs.
_SPARSE_RATIO = 16


@dataclass(frozen=True)
class TabularMDP:
    """A finite Markov decision process with S states and A actions.

    Construction validates the arrays and stores read-only float64 (bool for ``terminal``) copies; an
    invalid MDP raises ``ValueError`` naming the first offending entry. When few next states are possible
    (gridworlds: at most five), it also keeps each row's successors, so that a backup costs O(S A k) for k
    successors rather than the O(S^2 A) of a dense product.

    Attributes:
        transitions: (S, A, S) ``P[s, a, s']``, the probability of ``s'`` after action ``a`` in ``s``.
        rewards: (S, A) ``R[s, a]``, the expected reward of action ``a`` in ``s``.
        discount: gamma in [0, 1].
        terminal: (S,) bool, the states that end an episode (absorbing, with zero reward); all False when
            not given.
    """

    transitions: np.ndarray
    rewards: np.ndarray
    discount: float
    terminal: np.ndarray | None = None
    _successor_states: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _successor_probabilities: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        transitions = _as_float_array(self.transitions, "transitions")
        rewards = _as_float_array(self.rewards, "rewards")
        if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2] or transitions.shape[0] == 0:
            raise ValueError(f"transitions must have shape (S, A, S) with S >= 1, got {transitions.shape}")
        n_states, n_actions, _ = transitions.shape
        if n_actions == 0:
            raise ValueError("an MDP needs at least one action")
        if rewards.shape != (n_states, n_actions):
            raise ValueError(f"rewards must have shape (S, A) = {(n_states, n_actions)}, got {rewards.shape}")
        _check_stochastic(transitions)
        discount = float(self.discount)
        if not 0.0 <= discount <= 1.0:
            raise ValueError(f"discount must lie in [0, 1], got {discount}")
        terminal = np.zeros(n_states, bool) if self.terminal is None else np.asarray(self.terminal)
        if terminal.shape != (n_states,) or terminal.dtype != bool:
            raise ValueError(
                f"terminal must be a bool array of shape ({n_states},), got {terminal.dtype} {terminal.shape}"
            )
        for state in np.flatnonzero(terminal):
            if np.any(transitions[state, :, state] < 1.0 - _PROBABILITY_ATOL) or np.any(rewards[state] != 0.0):
                raise ValueError(
                    f"terminal state {state} must be absorbing with zero reward: P[{state}, a, {state}] = 1 and "
                    f"R[{state}, a] = 0 for every action a"
                )
        for name, value in (("transitions", transitions), ("rewards", rewards), ("terminal", terminal.copy())):
            value.flags.writeable = False
            object.__setattr__(self, name, value)
        object.__setattr__(self, "discount", discount)
        nonzero = transitions > 0.0
        counts = nonzero.sum(axis=2)  # (S, A) successors of each pair
        width = int(counts.max())
        if width * _SPARSE_RATIO <= n_states:
            pair_state, pair_action, next_state = np.nonzero(nonzero)  # row-major: each row's successors in order
            first_of_row = np.cumsum(counts.ravel()) - counts.ravel()
            rank = np.arange(len(next_state)) - np.repeat(first_of_row, counts.ravel())
            successors = np.zeros((n_states, n_actions, width), dtype=np.intp)  # padding: state 0 ...
            probabilities = np.zeros((n_states, n_actions, width))  # ... with probability 0
            successors[pair_state, pair_action, rank] = next_state
            probabilities[pair_state, pair_action, rank] = transitions[pair_state, pair_action, next_state]
            for name, value in (("_successor_states", successors), ("_successor_probabilities", probabilities)):
                value.flags.writeable = False
                object.__setattr__(self, name, value)

    @property
    def n_states(self) -> int:
        return self.transitions.shape[0]

    @property
    def n_actions(self) -> int:
        return self.transitions.shape[1]

    def expected_next_values(self, values: np.ndarray) -> np.ndarray:
        """``sum_s' P[s, a, s'] V[s']``: (S,) state values -> (S, A)."""
        if self._successor_states is None:
            return self.transitions @ values
        return np.einsum("sak,sak->sa", self._successor_probabilities, values[self._successor_states])


def action_values(mdp: TabularMDP, values: np.ndarray) -> np.ndarray:
    """One Bellman backup: ``Q[s, a] = R[s, a] + gamma * sum_s' P[s, a, s'] V[s']``.

    Args:
        values: (S,) state values V.

    Returns:
        (S, A) action values Q.
    """
    return mdp.rewards + mdp.discount * mdp.expected_next_values(values)


def _as_float_array(array: np.ndarray, name: str) -> np.ndarray:
    try:
        result = np.array(array, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric: {error}") from None
    if not np.all(np.isfinite(result)):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(result))[0])
        raise ValueError(f"{name} must be finite, but {name}{list(index)} = {result[index]}")
    return result


def _check_stochastic(transitions: np.ndarray) -> None:
    if np.any(transitions < 0.0):
        state, action, next_state = (int(i) for i in np.argwhere(transitions < 0.0)[0])
        raise ValueError(
            f"transition probabilities must be non-negative, but P[{state}, {action}, {next_state}] = "
            f"{transitions[state, action, next_state]}"
        )
    sums = transitions.sum(axis=2)
    bad = np.abs(sums - 1.0) > _PROBABILITY_ATOL
    if np.any(bad):
        state, action = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"each row P[s, a, :] must sum to 1, but P[{state}, {action}, :] sums to {float(sums[state, action])!r}"
        )
