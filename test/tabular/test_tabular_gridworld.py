"""Gridworld maps and their MDPs: parsing, malformed maps, dynamics, slip, shortest paths, rendering."""

import numpy as np
import pytest

from mbrl_ros.tabular import (
    ACTION_NAMES,
    dyna_maze,
    example_4_1,
    greedy_actions,
    make_gridworld,
    parse_map,
    value_iteration,
)

UP, RIGHT, DOWN, LEFT = (ACTION_NAMES.index(name) for name in ("up", "right", "down", "left"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the map is empty"),
        ("\n  \n\n", "the map is empty"),
        ("S..\n..\n..G", "map line 2 has 2 cells, but line 1 has 3"),
        ("\n\nS..\n.x.\n..G", r"map line 4, column 2: unknown cell 'x'"),
        ("S. .\n...G", r"map line 1, column 3: unknown cell ' '"),
        ("S..\n...", "no goal cell 'G'"),
    ],
    ids=["empty", "blank", "ragged", "unknown-character", "inner-space", "no-goal"],
)
def test_malformed_maps_are_rejected_with_line_and_column(text, message):
    with pytest.raises(ValueError, match=message):
        parse_map(text)


def test_a_map_of_goals_only_has_nowhere_to_start():
    with pytest.raises(ValueError, match="no cell to start from"):
        make_gridworld("GG", step_reward=0.0, goal_reward=1.0, discount=0.9)


@pytest.mark.parametrize(("slip", "discount"), [(-0.1, 0.9), (1.1, 0.9), (0.0, 2.0)])
def test_bad_parameters_are_rejected(slip, discount):
    with pytest.raises(ValueError, match="slip|discount"):
        make_gridworld("S.G", step_reward=0.0, goal_reward=1.0, discount=discount, slip=slip)


def test_surrounding_blank_lines_and_trailing_spaces_are_ignored():
    grid = parse_map("\n  \nS#G  \r\n...\n\n")
    assert grid.shape == (2, 3)
    np.testing.assert_array_equal(grid.walls, [[False, True, False], [False, False, False]])
    np.testing.assert_array_equal(np.argwhere(grid.goals), [[0, 2]])
    np.testing.assert_array_equal(np.argwhere(grid.starts), [[0, 0]])
    with pytest.raises(ValueError, match="map line 4, column 2"):  # lines are counted in the text as given
        parse_map("\n  \nS#G\n.?.")


def test_example_4_1_dynamics():
    world = example_4_1()
    mdp = world.mdp
    assert (mdp.n_states, mdp.n_actions, mdp.discount) == (16, 4, 1.0)
    np.testing.assert_array_equal(np.flatnonzero(mdp.terminal), [0, 15])
    np.testing.assert_array_equal(world.start_states, np.arange(1, 15))
    state = 4  # row 1, column 0
    assert tuple(world.cells[state]) == (1, 0)
    assert mdp.transitions[state, UP, 0] == 1.0  # into the terminal corner
    assert mdp.transitions[state, LEFT, state] == 1.0  # off the grid: stays
    assert mdp.transitions[state, RIGHT, 5] == 1.0 and mdp.transitions[state, DOWN, 8] == 1.0
    np.testing.assert_array_equal(mdp.rewards[~mdp.terminal], -1.0)
    np.testing.assert_array_equal(mdp.rewards[mdp.terminal], 0.0)


def test_walls_block_moves_and_are_not_states():
    world = make_gridworld("S#G\n...", step_reward=0.0, goal_reward=1.0, discount=0.9)
    assert world.mdp.n_states == 5
    start = int(world.start_states[0])
    assert world.mdp.transitions[start, RIGHT, start] == 1.0
    goal = int(np.flatnonzero(world.mdp.terminal)[0])
    below_goal = int(world.moves[goal, DOWN])
    assert world.mdp.transitions[below_goal, UP, goal] == 1.0
    assert world.mdp.rewards[below_goal, UP] == 1.0 and world.mdp.rewards[below_goal, LEFT] == 0.0


def test_slip_spreads_probability_over_the_four_moves_and_rewards_are_their_expectation():
    slip = 0.2
    world = make_gridworld("...\n.S.\n..G", step_reward=-1.0, goal_reward=10.0, discount=0.9, slip=slip)
    mdp = world.mdp
    centre = int(world.start_states[0])
    for action in range(4):
        row = mdp.transitions[centre, action]
        assert row[world.moves[centre, action]] == pytest.approx(1 - slip + slip / 4)
        assert np.count_nonzero(row) == 4
    right_of_centre = int(world.moves[centre, RIGHT])  # the goal is below it
    goal = int(np.flatnonzero(mdp.terminal)[0])
    probability_of_goal = mdp.transitions[right_of_centre, DOWN, goal]
    assert probability_of_goal == pytest.approx(1 - slip + slip / 4)
    assert mdp.rewards[right_of_centre, DOWN] == pytest.approx(10.0 * probability_of_goal - (1 - probability_of_goal))


def test_dyna_maze_is_the_book_maze_with_a_14_step_shortest_path():
    world = dyna_maze()
    assert world.grid.shape == (6, 9) and world.mdp.n_states == 47
    assert tuple(world.cells[world.start_states[0]]) == (2, 0)
    assert tuple(world.cells[np.flatnonzero(world.mdp.terminal)[0]]) == (0, 8)
    assert world.shortest_path_lengths()[world.start_states[0]] == 14
    # Value iteration agrees: the goal's reward of 1 arrives after 14 moves, discounted 13 times.
    optimal = value_iteration(world.mdp, tol=1e-12).values
    assert optimal[world.start_states[0]] == pytest.approx(0.95**13)


@pytest.mark.parametrize("seed", range(5))
def test_shortest_paths_match_value_iteration_on_random_maps(seed):
    rng = np.random.default_rng(seed)
    cells = rng.choice(np.array(list(".#")), size=(7, 8), p=[0.7, 0.3])
    cells[rng.integers(7), rng.integers(8)] = "G"
    world = make_gridworld("\n".join("".join(row) for row in cells), step_reward=-1.0, goal_reward=-1.0, discount=0.99)
    lengths = world.shortest_path_lengths()
    # -1 per move, discounted: a state d moves from the goal is worth -(1 - 0.99^d) / (1 - 0.99); unreachable ones
    # converge to -1 / (1 - 0.99) = -100.
    values = value_iteration(world.mdp, tol=1e-10).values
    expected = np.where(lengths >= 0, -(1 - 0.99 ** np.maximum(lengths, 0)) / 0.01, -100.0)
    np.testing.assert_allclose(values, expected, atol=1e-6)


def test_values_and_policy_render_as_the_map():
    world = example_4_1()
    solution = value_iteration(world.mdp)
    assert world.render_values(solution.values).splitlines() == [
        " 0.0 -1.0 -2.0 -3.0",
        "-1.0 -2.0 -3.0 -2.0",
        "-2.0 -3.0 -2.0 -1.0",
        "-3.0 -2.0 -1.0  0.0",
    ]
    policy = world.render_policy(greedy_actions(solution.action_values), ascii_only=True).splitlines()
    assert [row.split() for row in policy] == [
        ["G", "<", "<", "v<"],
        ["^", "^<", "^>v<", "v"],
        ["^", "^>v<", ">v", "v"],
        ["^>", ">", ">", "G"],
    ]
    walled = make_gridworld("S#G", step_reward=0.0, goal_reward=1.0, discount=0.9)
    assert walled.render_policy(np.array([RIGHT, UP])) == "→ # G"
    with pytest.raises(ValueError, match="values must have shape"):
        world.render_values(np.zeros(3))
