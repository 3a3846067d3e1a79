"""Policy evaluation, policy iteration and value iteration against the book and against exact solutions."""

import itertools

import numpy as np
import pytest

from mbrl_ros.tabular import (
    TabularMDP,
    action_values,
    example_4_1,
    greedy_actions,
    make_gridworld,
    policy_evaluation,
    policy_iteration,
    uniform_policy,
    value_iteration,
)

# Sutton & Barto (2018), Figure 4.1: v_k of the equiprobable random policy on the 4x4 gridworld, as printed
# (one decimal, truncated); None is k = infinity.
FIGURE_4_1 = {
    1: [[0.0, -1.0, -1.0, -1.0], [-1.0, -1.0, -1.0, -1.0], [-1.0, -1.0, -1.0, -1.0], [-1.0, -1.0, -1.0, 0.0]],
    2: [[0.0, -1.7, -2.0, -2.0], [-1.7, -2.0, -2.0, -2.0], [-2.0, -2.0, -2.0, -1.7], [-2.0, -2.0, -1.7, 0.0]],
    3: [[0.0, -2.4, -2.9, -3.0], [-2.4, -2.9, -3.0, -2.9], [-2.9, -3.0, -2.9, -2.4], [-3.0, -2.9, -2.4, 0.0]],
    10: [[0.0, -6.1, -8.4, -9.0], [-6.1, -7.7, -8.4, -8.4], [-8.4, -8.4, -7.7, -6.1], [-9.0, -8.4, -6.1, 0.0]],
    None: [
        [0.0, -14.0, -20.0, -22.0],
        [-14.0, -18.0, -20.0, -20.0],
        [-20.0, -20.0, -18.0, -14.0],
        [-22.0, -20.0, -14.0, 0.0],
    ],
}


def as_grid(world, values: np.ndarray) -> np.ndarray:
    grid = np.full(world.grid.shape, np.nan)
    grid[world.cells[:, 0], world.cells[:, 1]] = values
    return grid


def exact_policy_values(mdp: TabularMDP, probabilities: np.ndarray) -> np.ndarray:
    """V_pi from the linear Bellman equation (I - gamma P_pi) V = r_pi (discount < 1)."""
    policy_transitions = np.einsum("sa,sat->st", probabilities, mdp.transitions)
    policy_rewards = (probabilities * mdp.rewards).sum(axis=1)
    return np.linalg.solve(np.eye(mdp.n_states) - mdp.discount * policy_transitions, policy_rewards)


def random_mdp(rng: np.random.Generator, n_states: int, n_actions: int, with_terminal: bool) -> TabularMDP:
    transitions = rng.dirichlet(np.full(n_states, 0.3), size=(n_states, n_actions))
    transitions[rng.random(transitions.shape) < 0.5] = 0.0  # sparse rows, as in gridworlds
    transitions[..., 0] += 1e-3  # no empty row
    transitions /= transitions.sum(axis=2, keepdims=True)
    rewards = rng.normal(size=(n_states, n_actions))
    terminal = np.zeros(n_states, bool)
    if with_terminal:
        terminal[-1] = True
        transitions[-1] = np.eye(n_states)[-1]
        rewards[-1] = 0.0
    return TabularMDP(transitions, rewards, float(rng.uniform(0.5, 0.97)), terminal)


@pytest.mark.parametrize("sweeps", list(FIGURE_4_1), ids=lambda k: f"k={k or 'inf'}")
def test_random_policy_values_on_example_4_1_match_figure_4_1(sweeps):
    world = example_4_1()
    policy = uniform_policy(world.mdp)
    if sweeps is None:
        evaluation = policy_evaluation(world.mdp, policy, tol=1e-6)
        assert evaluation.converged and evaluation.delta < 1e-6
    else:
        evaluation = policy_evaluation(world.mdp, policy, tol=1e-12, max_sweeps=sweeps)
        assert not evaluation.converged and evaluation.sweeps == sweeps
    np.testing.assert_allclose(as_grid(world, evaluation.values), FIGURE_4_1[sweeps], atol=0.1)


def test_evaluation_reports_sweeps_and_stops_at_the_tolerance():
    world = example_4_1()
    loose = policy_evaluation(world.mdp, uniform_policy(world.mdp), tol=1e-2)
    tight = policy_evaluation(world.mdp, uniform_policy(world.mdp), tol=1e-8)
    assert loose.converged and tight.converged
    assert (
        loose.delta < 1e-2 <= policy_evaluation(world.mdp, uniform_policy(world.mdp), max_sweeps=loose.sweeps - 1).delta
    )
    assert tight.sweeps > loose.sweeps
    # Warm-started from its own fixed point, evaluation stops after one sweep.
    again = policy_evaluation(world.mdp, uniform_policy(world.mdp), tol=1e-6, initial_values=tight.values)
    assert again.sweeps == 1


def test_value_iteration_greedy_policy_is_optimal_on_example_4_1():
    world = example_4_1()
    solution = value_iteration(world.mdp)
    assert solution.converged and solution.iterations == solution.sweeps
    rows, columns = world.cells.T
    moves_to_a_corner = np.minimum(rows + columns, 6 - rows - columns)
    np.testing.assert_allclose(solution.values, -moves_to_a_corner)
    # The greedy policy's own value is optimal everywhere ...
    greedy_values = policy_evaluation(world.mdp, solution.policy).values
    np.testing.assert_allclose(greedy_values, -moves_to_a_corner, atol=1e-6)
    # ... and the greedy actions are exactly the moves that bring a corner closer (the arrows of Figure 4.1).
    closer = moves_to_a_corner[world.moves] < moves_to_a_corner[:, None]
    non_terminal = ~world.mdp.terminal
    np.testing.assert_array_equal(greedy_actions(solution.action_values)[non_terminal], closer[non_terminal])


SYMMETRIC_MAP = "\n".join(["G......", *["......."] * 5, "......G"])  # ties everywhere off the diagonals


@pytest.mark.parametrize(
    ("text", "slip", "discount", "tol"),
    [
        (None, 0.0, 1.0, 1e-8),
        (SYMMETRIC_MAP, 0.1, 0.9, 1e-8),
        (SYMMETRIC_MAP, 0.1, 1.0, 1e-4),
        (SYMMETRIC_MAP, 0.3, 1.0, 1e-8),
    ],
    ids=["example-4.1", "slip-discounted", "slip-loose-tol", "slip-undiscounted"],
)
def test_policy_iteration_does_not_churn_between_equally_good_actions(text, slip, discount, tol):
    world = (
        example_4_1()
        if text is None
        else make_gridworld(text, step_reward=-1, goal_reward=-1, discount=discount, slip=slip)
    )
    solution = policy_iteration(world.mdp, tol=tol)
    assert solution.converged
    # Evaluation error (~tol) makes tied actions look better by turns; switching on it takes 4-18 iterations here.
    assert solution.iterations <= 3, "policy iteration kept switching between equally good actions"
    optimal = value_iteration(world.mdp, tol=1e-10).values
    np.testing.assert_allclose(solution.values, optimal, atol=1e-6 if discount < 1 else 1e-2)


@pytest.mark.parametrize("seed", range(8))
def test_policy_iteration_and_value_iteration_agree_on_random_mdps(seed):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(
        rng, n_states=int(rng.integers(2, 40)), n_actions=int(rng.integers(2, 6)), with_terminal=seed % 2 == 0
    )
    by_policy = policy_iteration(mdp, tol=1e-11)
    by_value = value_iteration(mdp, tol=1e-11)
    assert by_policy.converged and by_value.converged
    np.testing.assert_array_equal(by_policy.policy, by_value.policy)
    np.testing.assert_allclose(by_policy.values, by_value.values, atol=1e-7)
    # Independently of both: the policy's exact values satisfy the Bellman optimality equation.
    exact = exact_policy_values(mdp, np.eye(mdp.n_actions)[by_policy.policy])
    np.testing.assert_allclose(by_value.values, exact, atol=1e-7)
    np.testing.assert_allclose(action_values(mdp, exact).max(axis=1), exact, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_value_iteration_matches_brute_force_over_all_deterministic_policies(seed):
    rng = np.random.default_rng(100 + seed)
    mdp = random_mdp(rng, n_states=4, n_actions=3, with_terminal=False)
    all_values = [
        exact_policy_values(mdp, np.eye(mdp.n_actions)[list(actions)])
        for actions in itertools.product(range(mdp.n_actions), repeat=mdp.n_states)
    ]
    best = max(all_values, key=lambda values: values.sum())
    assert all(np.all(best >= values - 1e-9) for values in all_values), "an optimal policy is best in every state"
    np.testing.assert_allclose(value_iteration(mdp, tol=1e-11).values, best, atol=1e-7)


def test_policy_evaluation_matches_the_linear_solution_for_a_stochastic_policy():
    rng = np.random.default_rng(7)
    mdp = random_mdp(rng, n_states=25, n_actions=4, with_terminal=True)
    policy = rng.dirichlet(np.ones(4), size=25)
    evaluation = policy_evaluation(mdp, policy, tol=1e-12)
    np.testing.assert_allclose(evaluation.values, exact_policy_values(mdp, policy), atol=1e-9)


def test_value_iteration_error_bound_holds_at_a_loose_tolerance():
    rng = np.random.default_rng(3)
    mdp = random_mdp(rng, n_states=30, n_actions=4, with_terminal=False)
    tol = 1e-2
    loose = value_iteration(mdp, tol=tol)
    optimal = value_iteration(mdp, tol=1e-12).values
    greedy = exact_policy_values(mdp, np.eye(mdp.n_actions)[loose.policy])
    assert np.all(greedy >= optimal - 2 * mdp.discount * tol / (1 - mdp.discount))


def test_running_out_of_sweeps_is_reported_not_raised():
    # Undiscounted, with a cell that cannot reach the goal: no policy has finite values there.
    world = make_gridworld("G.#.", step_reward=-1.0, goal_reward=0.0, discount=1.0)
    by_value = value_iteration(world.mdp, max_sweeps=50)
    assert not by_value.converged and by_value.sweeps == 50 and by_value.delta == pytest.approx(1.0)
    by_policy = policy_iteration(world.mdp, max_evaluation_sweeps=50)
    assert not by_policy.converged and by_policy.sweeps == 50
    assert by_value.values[world.start_states[-1]] == pytest.approx(-50.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda mdp: policy_evaluation(mdp, np.full((16, 4), 0.5)), "probability distributions"),
        (lambda mdp: policy_evaluation(mdp, np.zeros((16, 3))), r"shape \(S, A\)"),
        (lambda mdp: policy_evaluation(mdp, np.full(16, 4)), r"actions must lie in \[0, 4\)"),
        (lambda mdp: policy_evaluation(mdp, np.zeros(15, int)), r"shape \(16,\)"),
        (lambda mdp: policy_evaluation(mdp, uniform_policy(mdp), initial_values=np.zeros(3)), "initial_values"),
        (lambda mdp: value_iteration(mdp, tol=0.0), "tol must be positive"),
        (lambda mdp: value_iteration(mdp, max_sweeps=0), "max_sweeps must be >= 1"),
        (lambda mdp: policy_iteration(mdp, max_iterations=0), "max_iterations must be >= 1"),
    ],
    ids=[
        "rows-not-summing",
        "shape",
        "action-range",
        "deterministic-shape",
        "initial-values",
        "tol",
        "sweeps",
        "iterations",
    ],
)
def test_bad_arguments_are_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call(example_4_1().mdp)
