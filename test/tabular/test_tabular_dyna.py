"""Dyna-Q: planning on the learned model speeds learning up as in the book's Figure 8.2; the model is right."""

import numpy as np
import pytest

from mbrl_ros.tabular import (
    DynaQ,
    TabularEnv,
    dyna_maze,
    dyna_q_curves,
    dyna_q_steps_per_episode,
    make_gridworld,
    value_iteration,
)

RUNS = 10  # fixed seeds 0..9, averaged


def episodes_until_settled(mean_steps: np.ndarray, bound: float) -> int:
    """The first episode (from 1) from which the mean steps per episode stay within ``bound``."""
    above = np.flatnonzero(mean_steps > bound)
    return int(above[-1]) + 2 if len(above) else 1


def greedy_route_length(world, q: np.ndarray, limit: int = 100) -> int | None:
    """Moves the greedy policy takes from the start to the goal (no exploration), None if it never arrives."""
    state = int(world.start_states[0])
    for moves in range(1, limit + 1):
        state = int(world.moves[state, int(np.argmax(q[state]))])
        if world.mdp.terminal[state]:
            return moves
    return None


def test_planning_reaches_the_shortest_path_in_far_fewer_episodes_than_q_learning():
    world = dyna_maze()
    shortest = int(world.shortest_path_lengths()[world.start_states[0]])
    curves = dyna_q_curves(world.mdp, world.start_states, [0, 50], episodes=40, runs=RUNS, progress=False)
    # Figure 8.2: averaged over runs, steps per episode fall to near the shortest path (exploration with
    # epsilon = 0.1 adds a few steps) within ~3 episodes with n = 50 and ~25 with n = 0.
    settled = {n: episodes_until_settled(steps.mean(axis=0), 2 * shortest) for n, steps in curves.items()}
    assert settled[50] <= 5, settled
    assert settled[0] >= 4 * settled[50], settled
    assert curves[50][:, -10:].mean() < 1.5 * shortest


def test_after_two_episodes_the_greedy_policy_reaches_the_goal_with_planning_only():
    world = dyna_maze()
    mdp = world.mdp
    reached = {}
    for n in (0, 50):
        routes = []
        for seed in range(RUNS):
            env = TabularEnv(mdp, world.start_states, seed)
            agent = DynaQ(mdp.n_states, mdp.n_actions, n, discount=mdp.discount, seed=seed)
            for _ in range(2):
                agent.run_episode(env)
            routes.append(greedy_route_length(world, agent.q))
        reached[n] = sum(route is not None for route in routes) / RUNS
    # Figure 8.3: halfway through the second episode, n = 50 has a policy from most of the maze; n = 0 only
    # near the goal.
    assert reached[50] >= 0.7 and reached[0] <= 0.2, reached


def test_dyna_q_learns_the_optimal_action_values_of_a_small_deterministic_world():
    world = make_gridworld("....\n.#..\n...G\n#...", step_reward=0.0, goal_reward=1.0, discount=0.9)
    env = TabularEnv(world.mdp, world.start_states, seed=0)
    # Off-policy: a uniformly random behaviour (epsilon = 1) visits every pair; planning replays them to the
    # fixed point, which on a deterministic world is exactly Q*.
    agent = DynaQ(world.mdp.n_states, 4, planning_steps=50, epsilon=1.0, discount=0.9, seed=0)
    for _ in range(30):
        agent.run_episode(env)
    optimal = value_iteration(world.mdp, tol=1e-12).action_values
    non_terminal = ~world.mdp.terminal
    np.testing.assert_allclose(agent.q[non_terminal], optimal[non_terminal], atol=1e-3)


def test_the_learned_model_is_the_true_model_on_a_deterministic_maze():
    world = dyna_maze()
    env = TabularEnv(world.mdp, world.start_states, seed=1)
    agent = DynaQ(world.mdp.n_states, 4, planning_steps=5, discount=0.95, seed=1)
    for _ in range(5):
        agent.run_episode(env)
    transitions, rewards, visits = agent.model.estimate()
    seen = visits > 0
    assert seen.sum() > 50
    np.testing.assert_array_equal(transitions[seen], world.mdp.transitions[seen])
    np.testing.assert_array_equal(rewards[seen], world.mdp.rewards[seen])
    assert np.all(transitions[~seen] == 0.0)
    assert sorted(agent.model.observed_states) == sorted(np.flatnonzero(seen.any(axis=1)))


def test_the_learned_model_estimates_slippery_dynamics():
    world = make_gridworld("S...\n.#..\n...G", step_reward=-1.0, goal_reward=0.0, discount=0.9, slip=0.3)
    env = TabularEnv(world.mdp, world.start_states, seed=2)
    agent = DynaQ(world.mdp.n_states, 4, planning_steps=0, epsilon=1.0, discount=0.9, seed=2)
    for _ in range(1000):
        agent.run_episode(env)
    transitions, _, visits = agent.model.estimate()
    well_visited = visits >= 400
    assert well_visited.sum() >= 30
    # Each estimated probability has a standard deviation of at most sqrt(0.25 / 400) = 0.025.
    assert np.abs(transitions - world.mdp.transitions)[well_visited].max() < 0.125


def test_environment_samples_next_states_with_the_model_probabilities():
    world = make_gridworld("...\n.S.\n..G", step_reward=0.0, goal_reward=1.0, discount=0.9, slip=0.4)
    env = TabularEnv(world.mdp, world.start_states, seed=3)
    start = int(world.start_states[0])
    samples = 20_000
    counts = np.zeros(world.mdp.n_states)
    for _ in range(samples):
        assert env.reset() == start
        next_state, reward, terminated = env.step(1)
        counts[next_state] += 1
        assert reward == world.mdp.rewards[start, 1] and terminated == world.mdp.terminal[next_state]
    expected = world.mdp.transitions[start, 1]
    assert np.all(counts[expected == 0] == 0)
    np.testing.assert_allclose(counts / samples, expected, atol=5 * np.sqrt(0.25 / samples))


def test_the_first_episode_is_shared_across_n_and_runs_are_reproducible():
    world = dyna_maze()
    curves = dyna_q_curves(world.mdp, world.start_states, [0, 5, 50], episodes=3, runs=4, seed=11, progress=False)
    np.testing.assert_array_equal(curves[0][:, 0], curves[50][:, 0])
    np.testing.assert_array_equal(curves[5][:, 0], curves[50][:, 0])
    assert len(set(curves[0][:, 0])) > 1, "runs must differ from each other"
    again = dyna_q_steps_per_episode(world.mdp, world.start_states, 50, episodes=3, seed=11 + 2)
    np.testing.assert_array_equal(again, curves[50][2])


def test_an_episode_that_cannot_end_is_cut_at_max_steps():
    world = make_gridworld("S#G", step_reward=0.0, goal_reward=1.0, discount=0.9)
    steps = dyna_q_steps_per_episode(world.mdp, world.start_states, 3, episodes=2, max_steps=25)
    np.testing.assert_array_equal(steps, [25, 25])


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"planning_steps": -1}, "planning_steps must be >= 0"),
        ({"step_size": 0.0}, r"step_size must lie in \(0, 1\]"),
        ({"epsilon": 1.5}, r"epsilon must lie in \[0, 1\]"),
        ({"discount": -0.5}, r"discount must lie in \[0, 1\]"),
        ({"n_states": 0}, "at least one state"),
    ],
)
def test_bad_agent_parameters_are_rejected(keywords, message):
    arguments = {"n_states": 4, "n_actions": 2, "planning_steps": 1} | keywords
    with pytest.raises(ValueError, match=message):
        DynaQ(**arguments)


def test_the_environment_rejects_misuse():
    world = make_gridworld("S.G", step_reward=0.0, goal_reward=1.0, discount=0.9)
    with pytest.raises(ValueError, match="non-terminal"):
        TabularEnv(world.mdp, np.array([2]))
    with pytest.raises(ValueError, match="non-empty 1-D integer"):
        TabularEnv(world.mdp, np.array([]))
    env = TabularEnv(world.mdp, world.start_states)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)
    env.reset()
    with pytest.raises(ValueError, match=r"action must lie in \[0, 4\)"):
        env.step(4)
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        dyna_q_steps_per_episode(world.mdp, world.start_states, 0, episodes=0)
    with pytest.raises(ValueError, match="runs must be >= 1"):
        dyna_q_curves(world.mdp, world.start_states, [0], episodes=1, runs=0, progress=False)
