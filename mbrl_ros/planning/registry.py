"""Optimizers by name, for configuration files and nodes: ``make_optimizer("cem", lower, upper, **params)``.

:data:`OPTIMIZERS` maximise an action-sequence objective; :data:`POLICY_GUIDED` (POPLIN) plan with a policy
through the model; :data:`PLANNERS` holds both, the names an MPC config accepts.
"""

import inspect
from collections.abc import Sequence
from typing import Any

from torch import Tensor

from mbrl_ros.planning.cem import CEM
from mbrl_ros.planning.icem import ICEM
from mbrl_ros.planning.mppi import MPPI
from mbrl_ros.planning.optimizer import Optimizer
from mbrl_ros.planning.poplin import PoplinAInit, PoplinAReplan, PoplinP
from mbrl_ros.planning.random_shooting import RandomShooting

# Optimizers of an action-sequence objective: ``optimize(objective, initial_mean)``.
OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (RandomShooting, CEM, MPPI, ICEM)}
# POPLIN: planners with a policy in the loop, ``plan(evaluator, states, ...)`` (MPC runs both kinds).
POLICY_GUIDED: dict[str, type[Optimizer]] = {cls.name: cls for cls in (PoplinAInit, PoplinAReplan, PoplinP)}
PLANNERS: dict[str, type[Optimizer]] = {**OPTIMIZERS, **POLICY_GUIDED}


def optimizer_parameters(name: str) -> dict[str, Any]:
    """The tunable parameters of optimizer ``name`` with their defaults (the bounds excluded)."""
    cls = _optimizer_class(name)
    signature = inspect.signature(cls.__init__)
    return {
        key: parameter.default
        for key, parameter in signature.parameters.items()
        if key not in ("self", "lower_bound", "upper_bound")
    }


def make_optimizer(
    name: str, lower_bound: Sequence[float] | Tensor, upper_bound: Sequence[float] | Tensor, **params: Any
) -> Optimizer:
    """Builds the optimizer called ``name`` (one of :data:`PLANNERS`) with ``params``.

    Raises:
        ValueError: for an unknown name, an unknown parameter or an invalid value.
    """
    allowed = optimizer_parameters(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for optimizer {name!r}; it takes {sorted(allowed)}")
    return _optimizer_class(name)(lower_bound, upper_bound, **params)


def _optimizer_class(name: str) -> type[Optimizer]:
    if name not in PLANNERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {sorted(PLANNERS)}")
    return PLANNERS[name]
