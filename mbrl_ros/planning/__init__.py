"""Sampling-based planners and receding-horizon MPC, ROS-free (plain PyTorch).

- optimizers (``optimize(objective, initial_mean) -> best_mean``): :class:`RandomShooting`, :class:`CEM`,
  :class:`MPPI` (PDDM), :class:`ICEM`; by name with :func:`make_optimizer`;
- :class:`TrajectoryEvaluator`: returns of action sequences through a dynamics model with particles
  (TS1, TS-inf, expectation, all members, deterministic);
- POPLIN (:mod:`mbrl_ros.planning.poplin`): :class:`PoplinAInit`, :class:`PoplinAReplan`, :class:`PoplinP`,
  CEM with a policy network in the loop (optimizers "poplin_a_init", "poplin_a_replan", "poplin_p");
- :class:`MPC`: receding-horizon control with warm start, for one state or a batch;
- :mod:`mbrl_ros.planning.reference_systems`: known-dynamics systems (LQR, cartpole swing-up) for checks.
"""

from mbrl_ros.planning.cem import CEM
from mbrl_ros.planning.icem import ICEM
from mbrl_ros.planning.mpc import MPC, MPCConfig, PlanStats, shift_plan
from mbrl_ros.planning.mppi import MPPI
from mbrl_ros.planning.optimizer import Optimizer, OptimizerStats
from mbrl_ros.planning.poplin import PolicyGuidedCEM, PoplinAInit, PoplinAReplan, PoplinP
from mbrl_ros.planning.propagation import PROPAGATION_MODES, Rollout, TrajectoryEvaluator
from mbrl_ros.planning.random_shooting import RandomShooting
from mbrl_ros.planning.registry import OPTIMIZERS, PLANNERS, POLICY_GUIDED, make_optimizer, optimizer_parameters

__all__ = [
    "CEM",
    "ICEM",
    "MPC",
    "MPPI",
    "OPTIMIZERS",
    "PLANNERS",
    "POLICY_GUIDED",
    "PROPAGATION_MODES",
    "MPCConfig",
    "Optimizer",
    "OptimizerStats",
    "PlanStats",
    "PolicyGuidedCEM",
    "PoplinAInit",
    "PoplinAReplan",
    "PoplinP",
    "RandomShooting",
    "Rollout",
    "TrajectoryEvaluator",
    "make_optimizer",
    "optimizer_parameters",
    "shift_plan",
]
