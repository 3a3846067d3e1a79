"""TabularMDP: valid arrays are accepted and frozen, invalid ones rejected with an error naming the entry."""

import numpy as np
import pytest

from mbrl_ros.tabular import TabularMDP, action_values


def two_state_chain() -> tuple[np.ndarray, np.ndarray]:
    """State 0: action 0 stays, action 1 moves to the terminal state 1 half of the time."""
    transitions = np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.0, 1.0]]])
    rewards = np.array([[1.0, 2.0], [0.0, 0.0]])
    return transitions, rewards


def test_action_values_are_one_bellman_backup():
    transitions, rewards = two_state_chain()
    mdp = TabularMDP(transitions, rewards, discount=0.5, terminal=np.array([False, True]))
    q = action_values(mdp, np.array([4.0, 0.0]))
    # Q(0, 0) = 1 + 0.5 * 4; Q(0, 1) = 2 + 0.5 * (0.5 * 4 + 0.5 * 0); the terminal state earns nothing.
    np.testing.assert_allclose(q, [[3.0, 3.0], [0.0, 0.0]])


@pytest.mark.parametrize(("n_states", "successors"), [(64, 1), (64, 4), (40, 40)], ids=["one", "few", "dense"])
def test_expected_next_values_equal_the_dense_product(n_states, successors):
    rng = np.random.default_rng(n_states + successors)
    transitions = np.zeros((n_states, 3, n_states))
    for state, action in np.ndindex(n_states, 3):
        next_states = rng.choice(n_states, size=rng.integers(1, successors + 1), replace=False)
        transitions[state, action, next_states] = rng.dirichlet(np.ones(len(next_states)))
    mdp = TabularMDP(transitions, rng.normal(size=(n_states, 3)), discount=0.9)
    values = rng.normal(size=n_states)
    np.testing.assert_allclose(mdp.expected_next_values(values), transitions @ values, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(action_values(mdp, values), mdp.rewards + 0.9 * transitions @ values, atol=1e-12)


def test_arrays_are_copied_and_read_only():
    transitions, rewards = two_state_chain()
    mdp = TabularMDP(transitions, rewards, discount=0.9)
    transitions[0, 0] = [0.0, 1.0]
    assert mdp.transitions[0, 0, 0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        mdp.rewards[0, 0] = 5.0
    assert (mdp.n_states, mdp.n_actions) == (2, 2)
    assert mdp.terminal.dtype == bool and not mdp.terminal.any()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p, r: p.__setitem__((0, 1), [0.5, 0.6]), r"P\[0, 1, :\] sums to 1.1"),
        (lambda p, r: p.__setitem__((1, 0), [0.0, 0.9]), r"P\[1, 0, :\] sums to 0.9"),
        (lambda p, r: p.__setitem__((0, 1), [1.5, -0.5]), r"non-negative, but P\[0, 1, 1\] = -0.5"),
        (lambda p, r: p.__setitem__((0, 0, 0), np.nan), r"transitions must be finite, but transitions\[0, 0, 0\]"),
        (lambda p, r: r.__setitem__((0, 1), np.inf), r"rewards must be finite"),
    ],
    ids=["row-sums-above-one", "row-sums-below-one", "negative-entry", "nan-probability", "infinite-reward"],
)
def test_invalid_entries_are_rejected_with_the_offending_entry(edit, message):
    transitions, rewards = two_state_chain()
    edit(transitions, rewards)
    with pytest.raises(ValueError, match=message):
        TabularMDP(transitions, rewards, discount=0.9)


@pytest.mark.parametrize(
    ("transitions", "rewards", "discount", "terminal", "message"),
    [
        (np.ones((2, 2, 3)) / 3, np.zeros((2, 2)), 0.9, None, r"shape \(S, A, S\)"),
        (np.ones((2, 2)) / 2, np.zeros((2, 2)), 0.9, None, r"shape \(S, A, S\)"),
        (np.ones((2, 0, 2)), np.zeros((2, 0)), 0.9, None, "at least one action"),
        (np.ones((2, 2, 2)) / 2, np.zeros((2, 3)), 0.9, None, r"rewards must have shape \(S, A\) = \(2, 2\)"),
        (np.ones((2, 2, 2)) / 2, np.zeros((2, 2)), 1.5, None, r"discount must lie in \[0, 1\]"),
        (np.ones((2, 2, 2)) / 2, np.zeros((2, 2)), -0.1, None, r"discount must lie in \[0, 1\]"),
        (np.ones((2, 2, 2)) / 2, np.zeros((2, 2)), 0.9, np.array([0, 1]), "terminal must be a bool array"),
        (np.ones((2, 2, 2)) / 2, np.zeros((2, 2)), 0.9, np.array([False, True]), "terminal state 1 must be absorbing"),
        ([["a"]], np.zeros((1, 1)), 0.9, None, "transitions must be numeric"),
    ],
    ids=[
        "non-square",
        "two-dimensional",
        "no-actions",
        "reward-shape",
        "discount-above-one",
        "negative-discount",
        "terminal-not-bool",
        "terminal-not-absorbing",
        "not-numeric",
    ],
)
def test_malformed_mdps_are_rejected(transitions, rewards, discount, terminal, message):
    with pytest.raises(ValueError, match=message):
        TabularMDP(transitions, rewards, discount, terminal)


def test_a_terminal_state_must_have_zero_reward():
    transitions, rewards = two_state_chain()
    rewards[1, 0] = -1.0
    with pytest.raises(ValueError, match="terminal state 1 must be absorbing with zero reward"):
        TabularMDP(transitions, rewards, 0.9, np.array([False, True]))
