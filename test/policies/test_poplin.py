"""POPLIN planners: A-Init, A-Replan, P (uni/sep) with BC/AVG distillation, alone and through MPC."""

import pytest
import torch

from mbrl_ros.planning import CEM, MPC, TrajectoryEvaluator, make_optimizer
from mbrl_ros.planning.poplin import PoplinAInit, PoplinAReplan, PoplinP
from mbrl_ros.planning.reference_systems import KnownDynamics, LinearQuadraticSystem
from mbrl_ros.planning.sampling import make_generators
from mbrl_ros.policies.imitation import ImitationConfig
from mbrl_ros.policies.network import PolicyNetwork

from support import TORCH_DEVICES

HORIZON = 30
SYSTEM = LinearQuadraticSystem.double_integrator()  # actions in [-5, 5] N
START = torch.tensor([[1.0, 0.0]])


class LinearFeedback(PolicyNetwork):
    """The LQR controller ``u = -K x`` as a policy: the perfect policy of the linear-quadratic task."""

    def __init__(self, gain: torch.Tensor):
        super().__init__(2, 1, [-5.0], [5.0])
        self.gain = gain

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return (-states @ self.gain.T).clamp(-5.0, 5.0)


def evaluator() -> TrajectoryEvaluator:
    return TrajectoryEvaluator(SYSTEM.model(), SYSTEM.reward, propagation="deterministic")


def plan_return(plan: torch.Tensor) -> float:
    """Return of action sequences (1, H, 1) from START on the true system."""
    return float(evaluator().returns(START, plan.view(1, 1, HORIZON, 1), make_generators([0]))[0, 0])


def optimal_return() -> float:
    """The H-step optimum from START: the unconstrained least-squares solution (its actions stay within the bounds)."""
    a, b = SYSTEM.a, SYSTEM.b
    lifted = torch.zeros(2 * HORIZON, HORIZON)  # x_{t+1} = A^{t+1} x_0 + sum_k A^{t-k} B u_k
    for t in range(HORIZON):
        for k in range(t + 1):
            lifted[2 * t: 2 * t + 2, k] = (torch.linalg.matrix_power(a, t - k) @ b)[:, 0]
    free = torch.cat([torch.linalg.matrix_power(a, t + 1) @ START[0] for t in range(HORIZON)])
    q = torch.block_diag(*[SYSTEM.q] * HORIZON)
    hessian = lifted.T @ q @ lifted + SYSTEM.r[0, 0] * torch.eye(HORIZON)
    actions = -torch.linalg.solve(hessian, lifted.T @ q @ free)
    assert actions.abs().max() < 5.0
    return plan_return(actions)


def test_a_init_seeded_with_a_perfect_policy_reaches_the_lq_optimum_in_one_iteration():
    optimum = optimal_return()
    settings = {"population": 100, "iterations": 1, "initial_std": 0.01}
    planner = PoplinAInit([-5.0], [5.0], **settings)
    planner.set_policy(LinearFeedback(SYSTEM.lqr_gain()))
    poplin = plan_return(planner.plan(evaluator(), START, torch.zeros(1, HORIZON, 1), make_generators([0])))
    generators = make_generators([0])
    cem = plan_return(CEM([-5.0], [5.0], **settings).optimize(
        lambda sequences: evaluator().returns(START, sequences, generators), torch.zeros(1, HORIZON, 1), generators))
    assert poplin >= optimum * 1.01, (poplin, optimum)  # returns are negative: within 1 % of the optimum
    assert cem < optimum * 2.0, (cem, optimum)  # the same search without the policy is far from it


@pytest.mark.parametrize("perturbation, steps", [("uni", 1), ("sep", HORIZON)])
def test_poplin_p_perturbations_have_the_documented_shapes(perturbation, steps):
    planner = PoplinP([-1.0], [1.0], population=7, perturbation=perturbation, hidden_units=8)
    policy = planner.ensure_policy(3)
    parameters = policy.parameter_vector().numel()
    assert planner.perturbation_steps(HORIZON) == steps
    mean = torch.zeros(2, steps, parameters)
    population = planner.sample_population(mean, planner.initial_variance(mean), make_generators([0, 1]))
    assert population.shape == (2, 7, steps, parameters)
    assert population.std().item() == pytest.approx(planner.parameter_std, rel=0.05)
    # through a model that never moves, a uni candidate acts alike at every step, a sep one does not
    still = TrajectoryEvaluator(KnownDynamics(lambda s, a: s, 3, 1), lambda s, a, n: -a.square().sum(-1),
                                propagation="deterministic")
    actions = planner.closed_loop_actions(still, torch.randn(2, 3), planner.feedback(policy, population), 7,
                                          HORIZON, make_generators([0, 1]))
    assert actions.shape == (2, 7, HORIZON, 1)
    spread_over_time = (actions - actions[:, :, :1]).abs().max().item()
    assert spread_over_time < 1e-6 if perturbation == "uni" else spread_over_time > 1e-2


@pytest.mark.parametrize("name, params", [
    ("poplin_a_replan", {}), ("poplin_p", {"perturbation": "uni"}), ("poplin_p", {"perturbation": "sep"}),
])
def test_policy_guided_search_beats_the_policy_it_starts_from(name, params):
    torch.manual_seed(0)
    planner = make_optimizer(name, [-5.0], [5.0], population=200, iterations=5, hidden_units=16, **params)
    policy = planner.ensure_policy(2)
    generators = make_generators([0])
    alone = plan_return(planner.closed_loop_actions(evaluator(), START, lambda t, x: policy(x), 1, HORIZON,
                                                    generators)[:, 0])
    planned = plan_return(planner.plan(evaluator(), START, torch.zeros(1, HORIZON, 1), generators))
    assert planned > alone / 3, (planned, alone)  # at least a third of the policy's cost removed


def test_a_replan_with_zero_noise_acts_as_the_policy():
    planner = PoplinAReplan([-5.0], [5.0])
    policy = LinearFeedback(SYSTEM.lqr_gain())
    noise = torch.zeros(1, 1, HORIZON, 1)
    replan = planner.closed_loop_actions(evaluator(), START, planner.feedback(policy, noise), 1, HORIZON,
                                         make_generators([0]))
    state, expected = START[0], []
    for _ in range(HORIZON):
        expected.append(policy(state))
        state = SYSTEM.step(state[None], expected[-1][None])[0]
    torch.testing.assert_close(replan[0, 0], torch.stack(expected))


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("name", ["poplin_a_init", "poplin_a_replan", "poplin_p"])
def test_mpc_plans_a_batch_like_separate_controllers(name, device):
    config = {"optimizer": name, "horizon": 10, "propagation": "deterministic", "device": device,
              "optimizer_params": {"population": 20, "iterations": 2, "hidden_units": 8}}
    torch.manual_seed(0)
    policy = PolicyNetwork(2, 1, [-5.0], [5.0], hidden_units=8)
    starts = torch.tensor([[1.0, 0.0], [-0.5, 0.3]], device=device)
    batch = MPC(SYSTEM.model(), SYSTEM.reward, [-5.0], [5.0], config, policy=policy, seed=[3, 4]).plan(starts)
    for index in range(2):
        single = MPC(SYSTEM.model(), SYSTEM.reward, [-5.0], [5.0], config, policy=policy, seed=[3 + index])
        torch.testing.assert_close(single.plan(starts[index]), batch[index], atol=1e-5, rtol=1e-5)
    assert batch.shape == (2, 10, 1) and batch.abs().max() <= 5.0


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_bc_distillation_fits_the_policy_to_the_planned_actions(device):
    torch.manual_seed(0)
    mpc = MPC(SYSTEM.model(), SYSTEM.reward, [-5.0], [5.0], horizon=15, optimizer="poplin_a_replan",
              propagation="deterministic", seed=0, device=device,
              optimizer_params={"population": 100, "iterations": 3, "hidden_units": 16})
    starts = (torch.rand(40, 2) * 2 - 1).to(device)
    planned = mpc.plan(starts)[:, 0]
    before = (mpc.policy(starts) - planned).abs().mean().item()
    losses = mpc.optimizer.distill(ImitationConfig(epochs=1000, learning_rate=1e-2))
    after = (mpc.policy(starts) - planned).abs().mean().item()
    assert losses[-1] < losses[0] and after < before / 2, (before, after)


def test_avg_distillation_moves_the_parameters_by_the_mean_planned_perturbation():
    torch.manual_seed(0)
    planner = PoplinP([-5.0], [5.0], population=50, iterations=2, hidden_units=8, distillation="avg",
                      perturbation="sep")
    policy = planner.ensure_policy(2)
    theta = policy.parameter_vector()
    planner.plan(evaluator(), START, torch.zeros(1, HORIZON, 1), make_generators([0]))
    first = planner._perturbation_mean.mean(dim=(0, 1))
    planner.plan(evaluator(), -START, torch.zeros(1, HORIZON, 1), make_generators([1]))
    second = planner._perturbation_mean.mean(dim=(0, 1))
    assert planner.distill() == []
    torch.testing.assert_close(policy.parameter_vector(), theta + (first + second) / 2)


def test_poplin_settings_are_checked():
    with pytest.raises(ValueError, match="perturbation"):
        make_optimizer("poplin_p", [-1.0], [1.0], perturbation="both")
    with pytest.raises(ValueError, match="distils"):
        make_optimizer("poplin_a_init", [-1.0], [1.0], distillation="avg")
    with pytest.raises(ValueError, match="plans through a model"):
        make_optimizer("poplin_p", [-1.0], [1.0]).optimize(lambda s: s.sum((-1, -2)), torch.zeros(5, 1))
    with pytest.raises(ValueError, match="action bounds"):
        make_optimizer("poplin_a_init", [-1.0], [1.0]).set_policy(PolicyNetwork(2, 1, [-5.0], [5.0]))
    with pytest.raises(ValueError, match="takes no policy"):
        MPC(SYSTEM.model(), SYSTEM.reward, [-5.0], [5.0], optimizer="cem", policy=PolicyNetwork(2, 1, [-5.0], [5.0]))
