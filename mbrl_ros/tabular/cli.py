"""``mbrl-ros gridworld``: solve a gridworld by dynamic programming and plot Dyna-Q's learning curves.

numpy, tqdm and matplotlib are imported by the handler only, so ``mbrl-ros --help`` stays fast.
"""

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mbrl_ros.tabular.gridworld import Gridworld

# name -> (step reward, goal reward, discount); the map texts live in mbrl_ros.tabular.gridworld.
_PRESETS = {"example-4.1": (-1.0, -1.0, 1.0), "dyna-maze": (0.0, 1.0, 0.95)}
_FILE_PRESET = _PRESETS["dyna-maze"]
_METHODS = ("value-iteration", "policy-iteration", "random-policy")

_EPILOG = """\
maps: 'example-4.1' (Sutton & Barto Example 4.1: 4x4, reward -1 per move, undiscounted), 'dyna-maze'
(Example 8.1: 6x9 maze, reward 1 at the goal, discount 0.95), or a text file with one character per cell:
'.' free, '#' wall, 'S' start, 'G' goal (terminal). Files take the Dyna maze's rewards and discount unless
given.

examples:
  mbrl-ros gridworld                                   # Example 4.1 by value iteration
  mbrl-ros gridworld --method random-policy            # the random policy's values (Figure 4.1)
  mbrl-ros gridworld dyna-maze --dyna 0 5 50           # Figure 8.2: CSV and PNG in runs/gridworld
  mbrl-ros gridworld my_map.txt --slip 0.2 --method policy-iteration
"""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds the ``gridworld`` subcommand."""
    parser = subparsers.add_parser(
        "gridworld",
        help="dynamic programming and Dyna-Q on a gridworld",
        description="Solve a gridworld with a known model (value iteration, policy iteration, or evaluation of\n"
        "the random policy): print the state values and the greedy policy as arrows. With --dyna, also run\n"
        "Dyna-Q for several numbers of planning steps; write its steps per episode as CSV and plot them (PNG).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("map", nargs="?", default="example-4.1", help="built-in map name or map file")
    model = parser.add_argument_group("model")
    model.add_argument("--step-reward", type=float, metavar="R", help="reward of a move not entering a goal")
    model.add_argument("--goal-reward", type=float, metavar="R", help="reward of a move entering a goal")
    model.add_argument("--discount", type=_probability, metavar="GAMMA", help="gamma in [0, 1]")
    model.add_argument(
        "--slip", type=_probability, default=0.0, metavar="P", help="probability a move goes a random way"
    )
    solve = parser.add_argument_group("dynamic programming")
    solve.add_argument("--method", choices=_METHODS, default="value-iteration", help="default: %(default)s")
    solve.add_argument(
        "--tol", type=_positive_float, default=1e-8, metavar="T", help="stop when a sweep changes V by less"
    )
    solve.add_argument(
        "--max-sweeps", type=_positive_int, default=100_000, metavar="K", help="sweeps allowed (per evaluation)"
    )
    solve.add_argument(
        "--decimals", type=_non_negative_int, default=1, metavar="D", help="decimals of the printed values"
    )
    solve.add_argument("--ascii", action="store_true", help="print ^ > v < instead of arrows")
    dyna = parser.add_argument_group("Dyna-Q")
    dyna.add_argument("--dyna", type=_non_negative_int, nargs="+", metavar="N", help="planning steps to compare")
    dyna.add_argument(
        "--episodes", type=_positive_int, default=50, metavar="E", help="episodes per run (default %(default)s)"
    )
    dyna.add_argument(
        "--runs", type=_positive_int, default=30, metavar="R", help="runs averaged per n (default %(default)s)"
    )
    dyna.add_argument(
        "--seed", type=_non_negative_int, default=0, metavar="S", help="seed of run 0; run r uses seed + r"
    )
    dyna.add_argument("--step-size", type=_step_size, default=0.1, metavar="ALPHA", help="alpha (default %(default)s)")
    dyna.add_argument(
        "--epsilon", type=_probability, default=0.1, metavar="EPS", help="exploration (default %(default)s)"
    )
    dyna.add_argument(
        "--max-steps", type=_positive_int, default=100_000, metavar="K", help="cut an episode after this many"
    )
    dyna.add_argument(
        "--output", type=Path, default=Path("runs/gridworld"), metavar="DIR", help="folder for the CSV and PNG"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Runs ``mbrl-ros gridworld``; returns 0, 1 if dynamic programming did not converge, 2 on bad input."""
    from mbrl_ros.tabular.gridworld import DYNA_MAZE_MAP, EXAMPLE_4_1_MAP, make_gridworld

    builtin_maps = {"example-4.1": EXAMPLE_4_1_MAP, "dyna-maze": DYNA_MAZE_MAP}
    step_reward, goal_reward, discount = _PRESETS.get(args.map, _FILE_PRESET)
    step_reward = step_reward if args.step_reward is None else args.step_reward
    goal_reward = goal_reward if args.goal_reward is None else args.goal_reward
    discount = discount if args.discount is None else args.discount
    try:
        text = builtin_maps[args.map] if args.map in builtin_maps else _read_map_file(args.map, builtin_maps)
        world = make_gridworld(
            text, step_reward=step_reward, goal_reward=goal_reward, discount=discount, slip=args.slip
        )
    except ValueError as error:
        print(f"mbrl-ros gridworld: error: {error}", file=sys.stderr)
        return 2

    mdp = world.mdp
    height, width = world.grid.shape
    print(
        f"{args.map}: {height}x{width} grid, {mdp.n_states} states ({int(mdp.terminal.sum())} terminal), "
        f"discount {discount:g}, step reward {step_reward:g}, goal reward {goal_reward:g}, slip {args.slip:g}"
    )
    converged = _solve_and_print(world, args)
    if args.dyna:
        _run_dyna(world, args)
    return 0 if converged else 1


def _solve_and_print(world: "Gridworld", args: argparse.Namespace) -> bool:
    from mbrl_ros.tabular.dynamic_programming import (
        greedy_actions,
        policy_evaluation,
        policy_iteration,
        uniform_policy,
        value_iteration,
    )
    from mbrl_ros.tabular.mdp import action_values

    mdp = world.mdp
    if args.method == "random-policy":
        evaluation = policy_evaluation(mdp, uniform_policy(mdp), args.tol, args.max_sweeps)
        values, q, converged = evaluation.values, action_values(mdp, evaluation.values), evaluation.converged
        report = f"evaluation of the equiprobable random policy: {evaluation.sweeps} sweeps"
        delta = evaluation.delta
    else:
        if args.method == "value-iteration":
            solution = value_iteration(mdp, args.tol, args.max_sweeps)
            report = f"value iteration: {solution.sweeps} sweeps"
        else:
            solution = policy_iteration(mdp, args.tol, max_evaluation_sweeps=args.max_sweeps)
            report = f"policy iteration: {solution.iterations} policy evaluations, {solution.sweeps} sweeps in all"
        values, q, converged, delta = solution.values, solution.action_values, solution.converged, solution.delta
    print(f"{report}, last change {delta:.3g} (tol {args.tol:g}){'' if converged else ', NOT CONVERGED'}")
    if not converged:
        print(
            f"mbrl-ros gridworld: warning: {args.method} did not converge within its sweeps; with discount 1, a "
            "goal must be reachable from every cell (or raise --max-sweeps)",
            file=sys.stderr,
        )
    print("\nstate values:")
    print(world.render_values(values, args.decimals))
    print("\ngreedy policy (all tied actions shown):")
    print(world.render_policy(greedy_actions(q), ascii_only=args.ascii or not _stdout_has_arrows()))
    return converged


def _run_dyna(world: "Gridworld", args: argparse.Namespace) -> None:
    from mbrl_ros.tabular.curves import plot_steps_per_episode, write_steps_csv
    from mbrl_ros.tabular.dyna import dyna_q_curves

    print(f"\nDyna-Q, n = {', '.join(map(str, args.dyna))}: {args.runs} runs of {args.episodes} episodes each")
    curves = dyna_q_curves(
        world.mdp,
        world.start_states,
        args.dyna,
        args.episodes,
        args.runs,
        seed=args.seed,
        step_size=args.step_size,
        epsilon=args.epsilon,
        max_steps=args.max_steps,
    )
    csv_path, png_path = args.output / "dyna_q_steps.csv", args.output / "dyna_q_steps.png"
    write_steps_csv(csv_path, curves)
    shortest = world.shortest_path_lengths()[world.start_states]
    single_shortest = int(shortest[0]) if len(shortest) == 1 and shortest[0] > 0 else None
    plot_steps_per_episode(csv_path, png_path, shortest_path=single_shortest, title=f"Dyna-Q on {args.map}")
    tail = min(10, args.episodes)
    for n, steps in curves.items():
        mean = steps.mean(axis=0)
        print(
            f"  n = {n:>3}: mean steps per episode: first {mean[0]:.1f}"
            + (f", second {mean[1]:.1f}" if args.episodes > 1 else "")
            + f", last {tail} episodes {mean[-tail:].mean():.1f}"
        )
    if single_shortest is not None:
        print(f"  shortest path from the start: {single_shortest} steps")
    print(f"curves: {csv_path}\nplot:   {png_path}")


def _read_map_file(name: str, builtin_maps: dict[str, str]) -> str:
    try:
        return Path(name).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(
            f"map {name!r} is neither a built-in map ({', '.join(builtin_maps)}) nor a readable text file: {error}"
        ) from None


def _stdout_has_arrows() -> bool:
    try:
        "↑→↓←".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _probability(text: str) -> float:
    return _bounded_float(text, 0.0, 1.0, include_low=True, what="a number in [0, 1]")


def _step_size(text: str) -> float:
    return _bounded_float(text, 0.0, 1.0, include_low=False, what="a number in (0, 1]")


def _positive_float(text: str) -> float:
    return _bounded_float(text, 0.0, float("inf"), include_low=False, what="a positive number")


def _bounded_float(text: str, low: float, high: float, include_low: bool, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ((low <= value) if include_low else (low < value)) or not value <= high:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
