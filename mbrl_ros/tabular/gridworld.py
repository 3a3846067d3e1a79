"""Gridworlds as tabular MDPs: text maps, the 4x4 gridworld of Example 4.1 and the Dyna maze of Example 8.1.

A map is text, one line per row, one character per cell:

- ``.`` a free cell, ``#`` a wall, ``S`` a start cell (free), ``G`` a goal cell (terminal).

The agent moves up, right, down or left; a move into a wall or off the map leaves it where it is. With
``slip > 0`` the move goes in a uniformly random direction (any of the four) with probability ``slip``.
Entering a goal pays ``goal_reward`` and ends the episode; every other move pays ``step_reward``.
States are the free cells (starts and goals included) in row-major order; walls are not states.
"""

from dataclasses import dataclass

import numpy as np

from mbrl_ros.tabular.mdp import TabularMDP

ACTION_NAMES = ("up", "right", "down", "left")
_MOVES = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)])  # (row, column) offset of each action
_ARROWS = "↑→↓←"
_ASCII_ARROWS = "^>v<"
_MAP_CHARACTERS = {".": "free", "#": "wall", "S": "start", "G": "goal"}

EXAMPLE_4_1_MAP = """\
G...
....
....
...G
"""
DYNA_MAZE_MAP = """\
.......#G
..#....#.
S.#....#.
..#......
.....#...
.........
"""


@dataclass(frozen=True)
class GridMap:
    """A parsed map: (H, W) bool masks of its walls, goals and start cells."""

    walls: np.ndarray
    goals: np.ndarray
    starts: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.walls.shape


def parse_map(text: str) -> GridMap:
    """Parses a text map (see the module docstring); surrounding blank lines and trailing spaces are ignored.

    Raises:
        ValueError: naming the line and column of the problem, for an empty or ragged map, an unknown
            character, or a map with no goal.
    """
    lines = [line.rstrip() for line in text.splitlines()]
    nonblank = [number for number, line in enumerate(lines, start=1) if line]
    if not nonblank:
        raise ValueError("the map is empty")
    first, last = nonblank[0], nonblank[-1]
    rows = lines[first - 1 : last]
    width = len(rows[0])
    for number, line in enumerate(rows, start=first):
        if len(line) != width:
            raise ValueError(
                f"map line {number} has {len(line)} cells, but line {first} has {width}: rows must be equally long"
            )
        for column, character in enumerate(line, start=1):
            if character not in _MAP_CHARACTERS:
                raise ValueError(
                    f"map line {number}, column {column}: unknown cell {character!r} (use '.' free, '#' wall, "
                    "'S' start, 'G' goal)"
                )
    cells = np.array([list(line) for line in rows])
    grid = GridMap(walls=cells == "#", goals=cells == "G", starts=cells == "S")
    if not grid.goals.any():
        raise ValueError("the map has no goal cell 'G'")
    return grid


@dataclass(frozen=True)
class Gridworld:
    """A gridworld and its MDP.

    Attributes:
        grid: the map.
        cells: (S, 2) int, the (row, column) of each state.
        moves: (S, A) int, the state each action leads to when it does not slip.
        mdp: the MDP; actions are ``ACTION_NAMES``, terminal states the goals.
        start_states: (K,) int, where episodes start: the ``S`` cells, or every non-goal state if none.
    """

    grid: GridMap
    cells: np.ndarray
    moves: np.ndarray
    mdp: TabularMDP
    start_states: np.ndarray

    def shortest_path_lengths(self) -> np.ndarray:
        """(S,) int, the fewest moves from each state to a goal when nothing slips; -1 where none is reachable."""
        lengths = np.where(self.mdp.terminal, 0, -1)
        frontier = self.mdp.terminal.copy()
        distance = 0
        while frontier.any():
            distance += 1
            reaches_frontier = frontier[self.moves].any(axis=1)  # (S,): some action leads into the frontier
            frontier = reaches_frontier & (lengths < 0)
            lengths[frontier] = distance
        return lengths

    def render_values(self, values: np.ndarray, decimals: int = 1) -> str:
        """The map with each state's value, walls as ``#``; values (S,)."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.mdp.n_states,):
            raise ValueError(f"values must have shape ({self.mdp.n_states},), got {values.shape}")
        return self._render([f"{value:.{decimals}f}" for value in values])

    def render_policy(self, greedy: np.ndarray, ascii_only: bool = False) -> str:
        """The map with each state's greedy actions as arrows, goals as ``G`` and walls as ``#``.

        Args:
            greedy: (S, A) bool, the greedy actions of each state (several arrows where tied); or (S,) int,
                one action per state.
            ascii_only: ``^ > v <`` instead of Unicode arrows.
        """
        greedy = np.asarray(greedy)
        if greedy.ndim == 1:
            greedy = np.eye(len(ACTION_NAMES), dtype=bool)[greedy]
        if greedy.shape != (self.mdp.n_states, len(ACTION_NAMES)):
            raise ValueError(f"greedy must have shape ({self.mdp.n_states}, {len(ACTION_NAMES)}), got {greedy.shape}")
        arrows = _ASCII_ARROWS if ascii_only else _ARROWS
        labels = [
            "G" if terminal else "".join(arrow for arrow, chosen in zip(arrows, row, strict=True) if chosen)
            for row, terminal in zip(greedy, self.mdp.terminal, strict=True)
        ]
        return self._render(labels)

    def _render(self, labels: list[str]) -> str:
        table = np.full(self.grid.shape, "#", dtype=object)
        for (row, column), label in zip(self.cells, labels, strict=True):
            table[row, column] = label
        width = max(len(label) for label in table.flat)
        return "\n".join(" ".join(label.rjust(width) for label in row) for row in table)


def make_gridworld(
    grid: GridMap | str, *, step_reward: float, goal_reward: float, discount: float, slip: float = 0.0
) -> Gridworld:
    """Builds the MDP of a map.

    Args:
        grid: a parsed map or its text.
        step_reward: reward of every move that does not enter a goal.
        goal_reward: reward of a move that enters a goal.
        discount: gamma in [0, 1].
        slip: probability in [0, 1] that a move goes in a uniformly random direction instead.
    """
    if isinstance(grid, str):
        grid = parse_map(grid)
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip must be a probability in [0, 1], got {slip}")
    if not np.isfinite([step_reward, goal_reward]).all():
        raise ValueError(f"step_reward and goal_reward must be finite, got {step_reward} and {goal_reward}")
    height, width = grid.shape
    cells = np.argwhere(~grid.walls)  # (S, 2), row-major
    n_states = len(cells)
    index = np.full(grid.shape, -1)
    index[cells[:, 0], cells[:, 1]] = np.arange(n_states)

    targets = cells[:, None, :] + _MOVES[None, :, :]  # (S, A, 2)
    inside = (targets[..., 0] >= 0) & (targets[..., 0] < height) & (targets[..., 1] >= 0) & (targets[..., 1] < width)
    clipped = np.clip(targets, 0, [height - 1, width - 1])
    target_index = index[clipped[..., 0], clipped[..., 1]]
    moves = np.where(inside & (target_index >= 0), target_index, np.arange(n_states)[:, None])  # (S, A)

    intended = np.eye(n_states)[moves]  # (S, A, S)
    transitions = (1.0 - slip) * intended + slip * intended.mean(axis=1, keepdims=True)
    terminal = grid.goals[cells[:, 0], cells[:, 1]]
    rewards = transitions @ np.where(terminal, goal_reward, step_reward)
    transitions[terminal] = np.eye(n_states)[terminal][:, None, :]
    rewards[terminal] = 0.0
    mdp = TabularMDP(transitions, rewards, discount, terminal)

    starts = np.flatnonzero(grid.starts[cells[:, 0], cells[:, 1]])
    if len(starts) == 0:
        starts = np.flatnonzero(~terminal)
    if len(starts) == 0:
        raise ValueError("the map has no cell to start from: every free cell is a goal")
    return Gridworld(grid, cells, moves, mdp, starts)


def example_4_1() -> Gridworld:
    """Sutton & Barto's Example 4.1: a 4x4 grid, terminal corners, reward -1 on every move, undiscounted."""
    return make_gridworld(EXAMPLE_4_1_MAP, step_reward=-1.0, goal_reward=-1.0, discount=1.0)


def dyna_maze() -> Gridworld:
    """Sutton & Barto's Example 8.1: the 6x9 Dyna maze, reward 1 on reaching the goal, gamma 0.95."""
    return make_gridworld(DYNA_MAZE_MAP, step_reward=0.0, goal_reward=1.0, discount=0.95)
