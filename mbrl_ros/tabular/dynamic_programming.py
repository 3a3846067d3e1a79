"""Dynamic programming on a known model (Sutton & Barto, ch. 4), vectorised over states and actions.

Every sweep is synchronous: all states are backed up from the previous sweep's values in one array
operation (the book's two-array version), so after k sweeps from zero the values are exactly the book's
``v_k``. A method stops when the largest change of a sweep falls below ``tol`` and reports how many
sweeps (and policy improvements) it took; a method that runs out of sweeps says so with
``converged=False`` instead of raising, so a caller can still inspect where it got to.
"""

from dataclasses import dataclass

import numpy as np

from mbrl_ros.tabular.mdp import TabularMDP, action_values

_TIE_FACTOR = 100.0  # policy iteration keeps its action when within this many tol of the best (evaluation error)


@dataclass(frozen=True)
class Evaluation:
    """The result of iterative policy evaluation.

    Attributes:
        values: (S,) state values of the policy.
        sweeps: sweeps over all states performed.
        delta: largest value change of the last sweep.
        converged: whether ``delta`` fell below the tolerance within the allowed sweeps.
    """

    values: np.ndarray
    sweeps: int
    delta: float
    converged: bool


@dataclass(frozen=True)
class Solution:
    """The result of policy iteration or value iteration.

    Attributes:
        values: (S,) state values (of ``policy`` for policy iteration; the last sweep's for value iteration).
        action_values: (S, A) Q computed from ``values``.
        policy: (S,) int, the greedy action of each state.
        iterations: policy-improvement steps (policy iteration) or sweeps (value iteration).
        sweeps: Bellman sweeps over all states in all, evaluation sweeps included.
        delta: largest value change of the last sweep.
        converged: whether the method met its stopping rule within its limits.
    """

    values: np.ndarray
    action_values: np.ndarray
    policy: np.ndarray
    iterations: int
    sweeps: int
    delta: float
    converged: bool


def uniform_policy(mdp: TabularMDP) -> np.ndarray:
    """The equiprobable random policy: (S, A), every action with probability 1 / A."""
    return np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)


def deterministic_policy(actions: np.ndarray, n_actions: int) -> np.ndarray:
    """(S,) action indices -> (S, A) action probabilities, one-hot."""
    actions = np.asarray(actions)
    if actions.ndim != 1 or not np.issubdtype(actions.dtype, np.integer):
        raise ValueError(f"actions must be a 1-D integer array, got {actions.dtype} {actions.shape}")
    if np.any((actions < 0) | (actions >= n_actions)):
        raise ValueError(f"actions must lie in [0, {n_actions}), got {actions.min()}..{actions.max()}")
    return np.eye(n_actions)[actions]


def greedy_actions(q: np.ndarray, atol: float = 1e-6) -> np.ndarray:
    """Which actions are greedy: (S, A) action values -> (S, A) bool, True within ``atol`` of each row's best."""
    return q >= q.max(axis=1, keepdims=True) - atol


def policy_evaluation(
    mdp: TabularMDP,
    policy: np.ndarray,
    tol: float = 1e-8,
    max_sweeps: int = 100_000,
    initial_values: np.ndarray | None = None,
) -> Evaluation:
    """Iterative policy evaluation: ``V <- sum_a pi(a|s) (R + gamma P V)`` until a sweep changes V by under ``tol``.

    Args:
        mdp: the model.
        policy: (S, A) action probabilities, or (S,) action indices of a deterministic policy.
        tol: stopping threshold on the largest change of a sweep (value units).
        max_sweeps: sweeps allowed before giving up (``converged=False``); with ``discount = 1`` a policy that
            never reaches a terminal state has no finite value and runs out of sweeps.
        initial_values: (S,) values to start from; zeros when None.

    Returns:
        The policy's values and the sweeps it took.
    """
    probabilities = _checked_policy(mdp, policy)
    _check_limits(tol, max_sweeps)
    policy_rewards = np.einsum("sa,sa->s", probabilities, mdp.rewards)  # (S,)
    values = np.zeros(mdp.n_states) if initial_values is None else np.array(initial_values, dtype=np.float64)
    if values.shape != (mdp.n_states,):
        raise ValueError(f"initial_values must have shape ({mdp.n_states},), got {values.shape}")
    delta = np.inf
    for sweep in range(1, max_sweeps + 1):
        new_values = policy_rewards + mdp.discount * np.einsum(
            "sa,sa->s", probabilities, mdp.expected_next_values(values)
        )
        delta = float(np.max(np.abs(new_values - values)))
        values = new_values
        if delta < tol:
            return Evaluation(values, sweep, delta, True)
    return Evaluation(values, max_sweeps, delta, False)


def value_iteration(mdp: TabularMDP, tol: float = 1e-8, max_sweeps: int = 100_000) -> Solution:
    """Value iteration: ``V <- max_a (R + gamma * P V)`` until a sweep changes V by less than ``tol``.

    With ``discount < 1`` the greedy policy's values are then within ``2 * gamma * tol / (1 - gamma)`` of
    optimal (Puterman 1994, theorem 6.3.1).

    Returns:
        The values, their action values and greedy policy; ``iterations == sweeps``.
    """
    _check_limits(tol, max_sweeps)
    values = np.zeros(mdp.n_states)
    delta = np.inf
    sweeps = max_sweeps
    for sweep in range(1, max_sweeps + 1):
        new_values = action_values(mdp, values).max(axis=1)
        delta = float(np.max(np.abs(new_values - values)))
        values = new_values
        if delta < tol:
            sweeps = sweep
            break
    q = action_values(mdp, values)
    return Solution(values, q, q.argmax(axis=1), sweeps, sweeps, delta, delta < tol)


def policy_iteration(
    mdp: TabularMDP, tol: float = 1e-8, max_iterations: int = 1_000, max_evaluation_sweeps: int = 100_000
) -> Solution:
    """Policy iteration: evaluate the policy, make it greedy, repeat until it no longer changes.

    It starts from the equiprobable random policy (with ``discount = 1`` an arbitrary deterministic policy
    may never terminate and have no finite value) and evaluates each next policy starting from the previous
    values. A state keeps its action unless another is better by more than ``100 * tol``, the scale of the
    evaluation error: otherwise that error makes equally good actions look better by turns, and it switches
    between them for many more iterations.

    Args:
        mdp: the model.
        tol: stopping threshold of each policy evaluation (value units).
        max_iterations: policy improvements allowed.
        max_evaluation_sweeps: sweeps allowed to each policy evaluation.

    Returns:
        The final policy, its values and action values; ``iterations`` counts policy evaluations, ``sweeps``
        their sweeps in all. ``converged`` is False when an evaluation or the improvements ran out.
    """
    _check_limits(tol, max_evaluation_sweeps)
    if max_iterations < 1:
        raise ValueError(f"max_iterations must be >= 1, got {max_iterations}")
    states = np.arange(mdp.n_states)
    policy = uniform_policy(mdp)
    actions: np.ndarray | None = None
    values = np.zeros(mdp.n_states)
    sweeps = 0
    for iteration in range(1, max_iterations + 1):
        evaluation = policy_evaluation(mdp, policy, tol, max_evaluation_sweeps, initial_values=values)
        values, sweeps = evaluation.values, sweeps + evaluation.sweeps
        q = action_values(mdp, values)
        if not evaluation.converged:
            return Solution(values, q, q.argmax(axis=1), iteration, sweeps, evaluation.delta, False)
        improved = q.argmax(axis=1)
        if actions is not None:
            improved = np.where(q[states, actions] >= q.max(axis=1) - _TIE_FACTOR * tol, actions, improved)
            if np.array_equal(improved, actions):
                return Solution(values, q, actions, iteration, sweeps, evaluation.delta, True)
        actions = improved
        policy = deterministic_policy(actions, mdp.n_actions)
    return Solution(values, q, actions, max_iterations, sweeps, evaluation.delta, False)


def _checked_policy(mdp: TabularMDP, policy: np.ndarray) -> np.ndarray:
    policy = np.asarray(policy)
    if policy.ndim == 1:
        if policy.shape != (mdp.n_states,):
            raise ValueError(f"a deterministic policy must have shape ({mdp.n_states},), got {policy.shape}")
        return deterministic_policy(policy, mdp.n_actions)
    if policy.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"policy must have shape (S, A) = {(mdp.n_states, mdp.n_actions)}, got {policy.shape}")
    policy = policy.astype(np.float64)
    if not np.all(np.isfinite(policy)) or np.any(policy < 0.0) or not np.allclose(policy.sum(axis=1), 1.0):
        raise ValueError("policy rows must be probability distributions (finite, non-negative, summing to 1)")
    return policy


def _check_limits(tol: float, max_sweeps: int) -> None:
    if not tol > 0.0:
        raise ValueError(f"tol must be positive, got {tol}")
    if max_sweeps < 1:
        raise ValueError(f"max_sweeps must be >= 1, got {max_sweeps}")
