"""Tabular model-based RL, numpy only: dynamic programming on a known MDP (Sutton & Barto ch. 4) and Dyna-Q
with a learned tabular model (ch. 8), on gridworlds built from text maps.

The names below are imported from their modules on first use, so that ``mbrl-ros --help``, which imports
this package's ``cli`` module, does not pay for numpy.
"""

import importlib

_MODULE_OF = {
    **dict.fromkeys(("plot_steps_per_episode", "read_steps_csv", "write_steps_csv"), "curves"),
    **dict.fromkeys(("DynaQ", "TabularEnv", "TabularModel", "dyna_q_curves", "dyna_q_steps_per_episode"), "dyna"),
    **dict.fromkeys(
        (
            "Evaluation",
            "Solution",
            "deterministic_policy",
            "greedy_actions",
            "policy_evaluation",
            "policy_iteration",
            "uniform_policy",
            "value_iteration",
        ),
        "dynamic_programming",
    ),
    **dict.fromkeys(
        (
            "ACTION_NAMES",
            "DYNA_MAZE_MAP",
            "EXAMPLE_4_1_MAP",
            "GridMap",
            "Gridworld",
            "dyna_maze",
            "example_4_1",
            "make_gridworld",
            "parse_map",
        ),
        "gridworld",
    ),
    **dict.fromkeys(("TabularMDP", "action_values"), "mdp"),
}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> object:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
