"""Closed-loop cost of every planner on a linear system with quadratic cost, against the LQR optimum."""

import pytest
import torch

from mbrl_ros.planning import MPC
from mbrl_ros.planning.reference_systems import LinearQuadraticSystem

from support import TORCH_DEVICES

EPISODE_STEPS = 50
# planner -> (MPC settings, allowed excess cost over the LQR optimum)
PLANNERS = {
    "random_shooting": ({"optimizer_params": {"population": 2000}, "horizon": 2}, 0.25),
    "cem": ({"optimizer_params": {"population": 200, "iterations": 5}, "horizon": 3}, 0.05),
    "mppi": ({"optimizer_params": {"population": 400, "iterations": 3, "gamma": 100.0, "sigma": 1.0, "beta": 0.7},
              "horizon": 3}, 0.05),
    "icem": ({"optimizer_params": {"population": 100, "iterations": 4}, "horizon": 3}, 0.05),
}


def start_states(system, gain, count):
    """Seeded random start states scaled so that the LQR's first action is 70% of the action limit."""
    directions = torch.randn(count, 2, generator=torch.Generator().manual_seed(0))
    return [d * 0.7 * float(system.action_high[0]) / (gain @ d).abs().item() for d in directions]


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_closed_loop_cost_is_close_to_the_lqr_optimum(name, device):
    system = LinearQuadraticSystem.double_integrator(dt=0.3, action_limit=5.0, action_cost=0.01)
    gain = system.lqr_gain()
    settings, tolerance = PLANNERS[name]
    for start in start_states(system, gain, 3):
        actions = []

        def lqr(x, actions=actions):
            actions.append(-gain @ x)
            return actions[-1]

        optimum = system.episode_cost(start, lqr, EPISODE_STEPS)
        # the bounds never bind for the LQR: it is the constrained optimum too
        assert max(abs(a.item()) for a in actions) < system.action_high[0]
        mpc = MPC(system.model(), system.reward, system.action_low, system.action_high, optimizer=name,
                  propagation="deterministic", seed=0, device=device, **settings)
        cost = system.episode_cost(start, lambda x, mpc=mpc: mpc.act(x).cpu(), EPISODE_STEPS)
        assert optimum <= cost * (1 + 1e-4), "a planner beat the LQR optimum: the optimum is wrong"
        assert cost <= (1 + tolerance) * optimum, f"{name}: cost {cost:.4f}, LQR {optimum:.4f}"
