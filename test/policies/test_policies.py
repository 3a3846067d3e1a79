"""Policy network, behaviour cloning with DAgger, PPO."""

import numpy as np
import pytest
import torch

from mbrl_ros.models import model_from_payload, model_to_payload
from mbrl_ros.policies.imitation import DaggerDataset, ImitationConfig, dagger, fit_policy
from mbrl_ros.policies.network import PolicyNetwork
from mbrl_ros.policies.ppo import PPO, PPOConfig

from point_world import PointReach, expert


def point_policy(**kwargs) -> PolicyNetwork:
    return PolicyNetwork(4, 2, [-1.0, -1.0], [1.0, 1.0], **kwargs)


def test_actions_stay_within_the_bounds_whatever_the_state():
    policy = PolicyNetwork(3, 2, [-0.5, 0.0], [0.5, 2.0])
    actions = policy(torch.randn(1000, 3) * 1e3)
    assert torch.all(actions >= torch.tensor([-0.5, 0.0])) and torch.all(actions <= torch.tensor([0.5, 2.0]))


def test_batched_forward_with_the_network_s_own_parameters_equals_forward():
    policy = point_policy()
    policy.state_normalizer.fit(torch.randn(50, 4) * 3 + 1)
    states = torch.randn(6, 5, 4)
    parameters = policy.parameter_vector().expand(6, -1)
    torch.testing.assert_close(policy.batched_forward(states, parameters), policy(states))
    perturbed = parameters + 0.1 * torch.randn_like(parameters)
    assert not torch.allclose(policy.batched_forward(states, perturbed), policy(states))


def test_behaviour_cloning_recovers_a_known_linear_expert():
    rng = np.random.default_rng(0)
    states = rng.uniform(-1, 1, size=(2000, 3)).astype(np.float32)
    gain = np.array([[0.3, -0.2], [0.1, 0.25], [-0.15, 0.05]], np.float32)
    actions = states @ gain  # within (-1, 1): the expert never saturates
    policy = PolicyNetwork(3, 2, [-1.0, -1.0], [1.0, 1.0], hidden_units=32, activation="tanh")
    fit_policy(policy, states, actions, ImitationConfig(epochs=60, learning_rate=3e-3))
    test_states = rng.uniform(-1, 1, size=(500, 3)).astype(np.float32)
    with torch.no_grad():
        predicted = policy(torch.as_tensor(test_states)).numpy()
    errors = np.abs(predicted - test_states @ gain)
    assert errors.mean() < 0.02 and errors.max() < 0.1, (errors.mean(), errors.max())  # actions span about +-0.5


def test_dagger_aggregates_the_states_the_policy_visits():
    rng = np.random.default_rng(1)
    dataset = DaggerDataset()
    start = rng.uniform(-1, 1, size=(200, 4)).astype(np.float32)
    dataset.add(start, expert(start))
    visits = []

    def visit(policy):
        env, states = PointReach(), []
        for seed in range(4):
            state, _ = env.reset(seed=100 * len(visits) + seed)
            for _ in range(25):
                states.append(state)
                state, *_ = env.step(policy.act(state))
        visits.append(len(states))
        return np.array(states)

    losses = dagger(point_policy(), dataset, visit, expert, iterations=2, config=ImitationConfig(epochs=20))
    assert len(losses) == 3 and len(dataset) == 200 + 2 * 100


def test_ppo_improves_the_return_of_a_small_continuous_task():
    torch.manual_seed(0)
    ppo = PPO(point_policy(hidden_units=32), PointReach(), PPOConfig(steps_per_update=1000, seed=0))
    records = ppo.train(8000)
    first, last = records[0]["mean_return"], np.mean([r["mean_return"] for r in records[-2:]])
    assert last > first + 2.0, (first, last)


def test_ppo_refuses_an_environment_of_other_sizes():
    with pytest.raises(ValueError, match="do not match"):
        PPO(PolicyNetwork(3, 2, [-1.0, -1.0], [1.0, 1.0]), PointReach())


def test_a_policy_round_trips_through_a_payload():
    policy = point_policy()
    policy.state_normalizer.fit(torch.randn(20, 4))
    restored = model_from_payload(model_to_payload(policy), expected_kind="policy")
    states = torch.randn(10, 4)
    torch.testing.assert_close(restored(states), policy(states))
