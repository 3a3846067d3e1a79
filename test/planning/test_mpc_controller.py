"""The receding-horizon controller: warm start, replanning, batching, statistics, model swaps, bad input."""

import math
import time

import pytest
import torch
from planning_doubles import OffsetEnsemble, point_reward

from mbrl_ros.models import ProbabilisticEnsemble
from mbrl_ros.planning import MPC, MPCConfig, shift_plan
from mbrl_ros.planning.reference_systems import CartpoleSwingUp

from support import TORCH_DEVICES

TASK = CartpoleSwingUp()
HANGING = torch.tensor([0.0, math.pi, 0.0, 0.0])  # the cart at the centre, the pole down, at rest


def cartpole_mpc(**settings):
    defaults = {"optimizer": "cem", "optimizer_params": {"population": 60, "iterations": 3}, "horizon": 8,
                "propagation": "deterministic", "seed": 0}
    return MPC(TASK.model(), TASK.reward, TASK.action_low, TASK.action_high, **{**defaults, **settings})


def record_initial_means(mpc):
    """Wraps the optimizer so that each plan's initial mean is kept (the optimizer runs unchanged)."""
    seen, optimize = [], mpc.optimizer.optimize

    def recording(objective, initial_mean, *args, **kwargs):
        seen.append(initial_mean.clone())
        return optimize(objective, initial_mean, *args, **kwargs)

    mpc.optimizer.optimize = recording
    return seen


@pytest.mark.parametrize("optimizer", ["cem", "mppi", "icem"])
def test_warm_start_shifts_the_last_plan_by_one_step(optimizer):
    mpc = cartpole_mpc(optimizer=optimizer, optimizer_params={})
    seen = record_initial_means(mpc)
    state = TASK.initial_states(1, torch.Generator().manual_seed(0))[0]
    mpc.act(state)
    plan = mpc._plan[0].clone()
    mpc.act(TASK.step(state[None], plan[:1])[0])
    assert len(seen) == 2
    assert torch.equal(seen[1][0, :-1], plan[1:])  # the first H-1 steps of the new mean: the old last H-1
    assert torch.equal(seen[1][0, -1], torch.zeros(1))  # the last step reset to its initial value
    assert torch.equal(seen[0][0], torch.zeros(8, 1))


def test_shift_plan_by_several_steps_and_without_warm_start():
    plan = torch.arange(12.0).view(1, 6, 2)
    shifted = shift_plan(plan, 4, torch.full((6, 2), -1.0))
    assert torch.equal(shifted[0, :2], plan[0, 4:]) and (shifted[0, 2:] == -1).all()
    assert (shift_plan(plan, 9, torch.zeros(6, 2)) == 0).all()
    mpc = cartpole_mpc(warm_start=False)
    seen = record_initial_means(mpc)
    for _ in range(3):
        mpc.act(HANGING)
    assert all(torch.equal(mean, torch.zeros(1, 8, 1)) for mean in seen)


def stats_per_plan(mpc, name, episodes, plans):
    """``mpc.last_stats.<name>`` after each of ``plans`` actions in each of ``episodes`` episodes from rest."""
    values = []
    for episode in range(episodes):
        mpc.reset(episode)
        for _ in range(plans):
            mpc.act(HANGING)
            values.append(getattr(mpc.last_stats, name))
    return values


@pytest.mark.parametrize("optimizer", ["cem", "mppi", "icem", "poplin_a_init"])
def test_a_cold_plan_runs_the_cold_start_iterations_and_warm_ones_the_optimizers(optimizer):
    mpc = cartpole_mpc(optimizer=optimizer, optimizer_params={"iterations": 2}, cold_start_iterations=5)
    iterations = stats_per_plan(mpc, "iterations", episodes=2, plans=3)
    assert iterations == [5, 2, 2, 5, 2, 2]  # the first plan of each episode starts from nothing
    assert mpc.optimizer.iterations == 2
    unwarmed = cartpole_mpc(optimizer=optimizer, optimizer_params={"iterations": 2}, cold_start_iterations=4,
                            warm_start=False)
    for _ in range(2):
        unwarmed.act(HANGING)
        assert unwarmed.last_stats.iterations == 4


@pytest.mark.parametrize("optimizer", ["cem", "mppi", "random_shooting"])
def test_a_cold_plan_samples_the_cold_start_population_and_warm_ones_the_optimizers(optimizer):
    params = {"population": 20} if optimizer == "random_shooting" else {"population": 20, "iterations": 2}
    mpc = cartpole_mpc(optimizer=optimizer, optimizer_params=params, cold_start_population=60)
    evaluate, elites = mpc.evaluator.returns, []

    def observed(states, sequences, generators):
        elites.append(getattr(mpc.optimizer, "elites", None))
        return evaluate(states, sequences, generators)

    mpc.evaluator.returns = observed
    evaluations = stats_per_plan(mpc, "evaluations", episodes=2, plans=2)
    per_plan = 1 if optimizer == "random_shooting" else 2
    assert evaluations == [60 * per_plan, 20 * per_plan] * 2
    assert mpc.optimizer.population == 20
    if optimizer == "cem":  # 2 elites of 20 (its default ratio 0.1): 6 of the cold plan's 60
        assert elites == ([6] * 2 + [2] * 2) * 2 and mpc.optimizer.elites == 2


@pytest.mark.parametrize("setting, params, small, large", [
    ("cold_start_iterations", {"population": 30, "iterations": 1}, 1, 12),
    ("cold_start_population", {"population": 10, "iterations": 10}, 10, 100),  # 1.09 against 0.37
])
def test_a_larger_cold_start_finds_a_better_first_plan(setting, params, small, large):
    first_returns = {}
    for cold in (small, large):
        returns = []
        for seed in range(6):
            mpc = cartpole_mpc(optimizer_params=params, seed=seed, **{setting: cold})
            mpc.plan(HANGING)
            returns.append(mpc.last_stats.predicted_return)
        first_returns[cold] = sum(returns) / len(returns)
    assert first_returns[large] > first_returns[small]


def test_replan_every_k_executes_k_actions_of_each_plan():
    mpc = cartpole_mpc(replan_every=3)
    seen = record_initial_means(mpc)
    state = TASK.initial_states(1, torch.Generator().manual_seed(1))[0]
    plans, actions = [], []
    for _ in range(6):
        action = mpc.act(state)
        if len(seen) > len(plans):
            plans.append(mpc._plan[0].clone())
        actions.append(action)
        state = TASK.step(state[None], action[None])[0]
    assert len(seen) == 2
    assert torch.equal(torch.stack(actions[:3]), plans[0][:3]) and torch.equal(torch.stack(actions[3:]), plans[1][:3])
    assert torch.equal(seen[1][0, :5], plans[0][3:])  # warm start shifted by the 3 executed steps


@pytest.mark.parametrize("optimizer", ["cem", "icem", "mppi", "random_shooting"])
def test_acting_on_a_batch_equals_separate_controllers_with_the_same_seeds(optimizer):
    starts = TASK.initial_states(3, torch.Generator().manual_seed(2))
    params = {"population": 100}
    together = cartpole_mpc(optimizer=optimizer, optimizer_params=params, seed=10)
    alone = [cartpole_mpc(optimizer=optimizer, optimizer_params=params, seed=10 + b) for b in range(3)]
    states = starts.clone()
    for _ in range(4):
        actions = together.act(states)
        separate = torch.stack([mpc.act(state) for mpc, state in zip(alone, states, strict=True)])
        assert actions.shape == (3, 1)
        assert torch.allclose(actions, separate, atol=1e-5)
        states = TASK.step(states, actions)


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_batched_acting_through_a_probabilistic_ensemble_matches_too(device):
    torch.manual_seed(0)
    model = ProbabilisticEnsemble(4, 1, ensemble_size=3, hidden_layers=2, hidden_units=32)
    settings = {"optimizer": "cem", "optimizer_params": {"population": 30, "iterations": 2}, "horizon": 5,
                "propagation": "ts_inf", "particles": 4, "device": device}
    starts = TASK.initial_states(2, torch.Generator().manual_seed(3)).to(device)
    together = MPC(model, TASK.reward, TASK.action_low, TASK.action_high, seed=[5, 9], **settings)
    alone = [MPC(model, TASK.reward, TASK.action_low, TASK.action_high, seed=s, **settings) for s in (5, 9)]
    for _ in range(2):
        actions = together.act(starts)
        assert actions.device.type == device and torch.isfinite(actions).all()
        assert torch.allclose(actions, torch.stack([m.act(s) for m, s in zip(alone, starts, strict=True)]),
                              atol=1e-5)


def test_actions_stay_within_the_bounds_and_stats_describe_the_plan():
    mpc = cartpole_mpc(optimizer="mppi", optimizer_params={"population": 50, "iterations": 2, "sigma": 3.0})
    state = HANGING
    plan = mpc.plan(state)
    assert plan.shape == (8, 1) and plan.abs().max() <= 1.0
    stats = mpc.last_stats
    assert stats.planner == "mppi" and stats.iterations == 2 and stats.evaluations == 100
    assert stats.model_steps == 100 * 8 + 8  # candidates x horizon, plus the plan's own rollout
    assert stats.plan_time > 0 and stats.disagreement == 0.0  # one true model: no disagreement
    expected, x = 0.0, state[None]
    for action in plan:
        next_x = TASK.step(x, action[None])
        expected += TASK.reward(x, action[None], next_x).item()
        x = next_x
    assert stats.predicted_return == pytest.approx(expected, rel=1e-5)


def test_the_stats_report_ensemble_disagreement_along_the_plan():
    offsets = [0.0, 1.0, 3.0]
    mpc = MPC(OffsetEnsemble(offsets), point_reward(5.0), [-1.0], [1.0], optimizer="cem", horizon=4,
              propagation="ts_inf", particles=3, seed=0, optimizer_params={"population": 20, "iterations": 2})
    mpc.plan(torch.zeros(1))
    assert mpc.last_stats.disagreement == pytest.approx(torch.tensor(offsets).std(correction=0).item(), rel=1e-5)


def test_a_new_model_is_used_from_the_next_plan_and_bad_ones_are_rejected():
    mpc = MPC(OffsetEnsemble([0.0]), point_reward(3.0), [-1.0], [1.0], optimizer="cem", horizon=3, seed=0,
              propagation="deterministic", optimizer_params={"population": 100, "iterations": 4})
    assert mpc.plan(torch.zeros(1)).mean() > 0.8  # drive towards 3 at full speed
    mpc.set_model(OffsetEnsemble([4.0]))  # now the state drifts by +4 per step on its own: brake
    assert mpc.plan(torch.zeros(1))[0] < -0.8
    with pytest.raises(ValueError, match="single-member"):
        mpc.set_model(OffsetEnsemble([0.0, 1.0]))
    broken = OffsetEnsemble([0.0])
    broken.offsets.data[0] = math.nan
    with pytest.raises(ValueError, match="non-finite"):
        mpc.set_model(broken)
    with pytest.raises(ValueError, match="plans for"):
        mpc.set_model(ProbabilisticEnsemble(2, 1, ensemble_size=1, hidden_layers=1, hidden_units=8))
    with pytest.raises(ValueError, match="DynamicsModel"):
        mpc.set_model(lambda s, a: s)
    assert mpc.plan(torch.zeros(1))[0] < -0.8  # the rejected models changed nothing


def test_bad_states_and_batch_changes_are_rejected_until_reset():
    mpc = cartpole_mpc()
    with pytest.raises(ValueError, match="state must be"):
        mpc.act(torch.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        mpc.act(torch.tensor([0.0, math.nan, 0.0, 0.0]))
    mpc.act(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="reset"):
        mpc.act(torch.zeros(3, 4))
    mpc.reset(seed=[1, 2, 3])
    assert mpc.act(torch.zeros(3, 4)).shape == (3, 1)
    with pytest.raises(ValueError, match="shift_steps"):
        mpc.plan(torch.zeros(3, 4), shift_steps=-1)


def test_configs_are_validated_with_clear_errors():
    config = {"horizon": 10, "optimizer": "icem", "optimizer_params": {"population": 40}, "seed": 3}
    mpc = MPC.from_config(TASK.model(), TASK.reward, TASK.action_low, TASK.action_high,
                          {**config, "propagation": "deterministic"})
    assert mpc.horizon == 10 and mpc.optimizer.population == 40
    assert MPCConfig.from_dict(config).particles is None
    assert MPCConfig.from_dict({"particles": "null", "discount": 1}).particles is None  # YAML null via ROS
    for bad, message in [
        ({"horizon": 0}, "horizon"),
        ({"horizon": 5, "replan_every": 6}, "replan_every"),
        ({"optimizer": "newton"}, "unknown optimizer"),
        ({"propagation": "ts2"}, "unknown propagation"),
        ({"particles": -1}, "particles"),
        ({"cold_start_iterations": 0}, "cold_start_iterations"),
        ({"cold_start_population": -5}, "cold_start_population"),
        ({"warm_start": "yes"}, "warm_start"),
        ({"cuda_graphs": 1}, "cuda_graphs"),
        ({"device": "abacus"}, "device"),
        ({"horizons": 5}, r"unknown MPC setting\(s\) \['horizons'\]"),
        ({"discount": "high"}, "MPC setting discount must be float, got 'high'"),
        ({"optimizer": 3}, "MPC setting optimizer must be str, got 3"),
    ]:
        with pytest.raises(ValueError, match=message):
            MPCConfig.from_dict(bad)
    with pytest.raises(ValueError, match="unknown parameter"):
        MPC(TASK.model(), TASK.reward, TASK.action_low, TASK.action_high, optimizer_params={"elite": 3})
    with pytest.raises(ValueError, match="action dimension"):
        MPC(TASK.model(), TASK.reward, [-1.0, -1.0], [1.0, 1.0], propagation="deterministic")
    with pytest.raises(ValueError, match="cold_start_iterations needs an optimizer with iterations"):
        cartpole_mpc(optimizer="random_shooting", optimizer_params={}, cold_start_iterations=3)


def test_a_deadline_cuts_the_plan_short():
    mpc = cartpole_mpc(optimizer_params={"population": 60, "iterations": 50})
    mpc.plan(torch.zeros(4), deadline=time.monotonic())
    assert mpc.last_stats.iterations == 1


def test_cem_swings_the_cartpole_up_with_the_true_dynamics():
    mpc = cartpole_mpc(optimizer="icem", optimizer_params={"population": 100, "iterations": 3}, horizon=15)
    state = TASK.initial_states(1, torch.Generator().manual_seed(0))[0]
    upright = 0
    for _ in range(80):
        action = mpc.act(state)
        state = TASK.step(state[None], action[None])[0]
        upright += bool(math.cos(state[1]) > 0.9)
    assert upright >= 20, f"the pole was near upright at only {upright} of 80 steps"
