"""Rollouts replayed as CUDA graphs plan exactly as eager ones, follow model changes, and fall back when they must.

On a machine without CUDA these run on the CPU, where ``cuda_graphs`` must change nothing; the CUDA cases run
where ``torch.cuda.is_available()`` (a GPU machine, README "Tests").
"""

import copy
import gc
import logging
import weakref

import pytest
import torch

from mbrl_ros.models import ProbabilisticEnsemble
from mbrl_ros.planning import MPC, TrajectoryEvaluator
from mbrl_ros.tensors import constant_like

from support import TORCH_DEVICES

STATE, ACTION = 9, 3  # an angle (0), a cube quaternion (1-4), four plain dimensions; the model's special inputs too
PLANNER = {"optimizer": "mppi", "horizon": 6, "propagation": "members", "sample_aleatoric": False,
           "optimizer_params": {"population": 64, "iterations": 2, "gamma": 10.0, "beta": 0.7, "sigma": 0.5}}


def hand_like_model(seed: int) -> ProbabilisticEnsemble:
    torch.manual_seed(seed)
    return ProbabilisticEnsemble(STATE, ACTION, ensemble_size=3, hidden_layers=2, hidden_units=32, activation="relu",
                                 angle_dims=[0], quaternion_dims=[1], cube_quaternion_dims=[1])


def reward(state, action, next_state):
    return -next_state[:, 5:].square().sum(-1) - 0.1 * next_state[:, 0].cos() - 0.01 * action.square().sum(-1)


def controllers(device: str, model_seed: int = 0, reward_fn=reward) -> tuple[MPC, MPC]:
    """Two controllers of one seed and one model (copied), the first with CUDA graphs."""
    graphed, eager = hand_like_model(model_seed), hand_like_model(model_seed)
    low, high = -torch.ones(ACTION), torch.ones(ACTION)
    return (MPC(graphed, reward_fn, low, high, PLANNER, seed=3, device=device, cuda_graphs=True),
            MPC(eager, reward_fn, low, high, PLANNER, seed=3, device=device, cuda_graphs=False))


def counted_rollouts(mpc: MPC) -> list[None]:
    """A list that grows by one at each rollout the controller's evaluator runs."""
    calls, run = [], mpc.evaluator._run_graphed

    def counting(*args, **kwargs):
        calls.append(None)
        return run(*args, **kwargs)

    mpc.evaluator._run_graphed = counting
    return calls


def act_alike(graphed: MPC, eager: MPC, steps: int) -> None:
    states = torch.randn(2, STATE, generator=torch.Generator().manual_seed(steps))
    for _ in range(steps):
        first, second = graphed.act(states), eager.act(states)
        assert torch.allclose(first, second, atol=1e-5), (first - second).abs().max()
        assert torch.allclose(graphed.last_stats.predicted_returns, eager.last_stats.predicted_returns, atol=1e-4)
        states = states + 0.1 * torch.randn(states.shape, generator=torch.Generator().manual_seed(7))
    assert graphed.evaluator.model_steps == eager.evaluator.model_steps


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_graphed_plans_equal_eager_ones_and_follow_model_changes(device):
    graphed, eager = controllers(device)
    rollouts = counted_rollouts(eager)
    act_alike(graphed, eager, steps=3)
    assert len(rollouts) == 9  # 3 plans x (2 iterations + the plan's own rollout for its statistics)
    assert graphed.evaluator.graph_replays == (9 if device == "cuda" else 0)
    assert eager.evaluator.graph_replays == 0

    captures = graphed.evaluator.graph_captures
    assert captures == (2 if device == "cuda" else 0)  # the optimizer's rollouts and the plan's own
    new_model = hand_like_model(1)  # a new model of the same architecture: copied into the captured one
    graphed.set_model(new_model)
    eager.set_model(hand_like_model(1))
    assert (graphed.model is new_model) == (device != "cuda")
    act_alike(graphed, eager, steps=2)
    assert graphed.evaluator.graph_captures == captures

    other = ProbabilisticEnsemble(STATE, ACTION, ensemble_size=3, hidden_layers=2, hidden_units=16)  # captured anew
    graphed.set_model(other)
    eager.set_model(copy.deepcopy(other))
    assert graphed.model is other
    act_alike(graphed, eager, steps=2)
    assert graphed.evaluator.graph_captures == (4 if device == "cuda" else 0)

    with torch.no_grad():  # weights changed in place (a trainer's step): the graph reads them anew
        for model in (graphed.evaluator.model, eager.evaluator.model):
            next(model.parameters()).mul_(1.5)
    act_alike(graphed, eager, steps=2)

    for model in (graphed.evaluator.model, eager.evaluator.model):  # a buffer replaced: captured again
        model.input_normalizer.mean = model.input_normalizer.mean + 0.3
    act_alike(graphed, eager, steps=2)
    assert len(rollouts) == 33 and graphed.evaluator.graph_replays == (33 if device == "cuda" else 0)


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_a_reward_that_copies_from_the_host_runs_eagerly_with_a_warning(device, caplog):
    def host_reward(state, action, next_state):
        return reward(state, action, next_state) + torch.tensor(0.5).to(next_state)  # a host copy at every call

    graphed, eager = controllers(device, reward_fn=host_reward)
    with caplog.at_level(logging.WARNING, logger="mbrl_ros.planning.propagation"):
        act_alike(graphed, eager, steps=2)
    assert graphed.evaluator.graph_replays == 0
    assert ("cannot be captured as a CUDA graph" in caplog.text) == (device == "cuda")


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_a_cold_start_population_is_captured_once_beside_the_warm_one(device):
    low, high = -torch.ones(ACTION), torch.ones(ACTION)
    graphed, eager = (MPC(hand_like_model(0), reward, low, high, PLANNER, seed=3, device=device, cuda_graphs=graphs,
                          cold_start_population=160) for graphs in (True, False))
    for episode in range(2):  # each episode's first plan samples 160 sequences, the plans after it 64
        graphed.reset(episode)
        eager.reset(episode)
        act_alike(graphed, eager, steps=2)
    assert graphed.optimizer.population == 64
    assert graphed.evaluator.graph_replays == (12 if device == "cuda" else 0)
    assert graphed.evaluator.graph_captures == (3 if device == "cuda" else 0)  # 160 and 64 wide, the plan's own


@pytest.mark.parametrize(("propagation", "aleatoric", "replayable"),
                         [("members", False, True), ("expectation", True, True), ("members", True, False),
                          ("ts_inf", False, False), ("ts1", False, False)])
def test_only_rollouts_without_random_numbers_or_disturbance_are_replayed(propagation, aleatoric, replayable):
    evaluator = TrajectoryEvaluator(hand_like_model(0), reward, propagation=propagation, sample_aleatoric=aleatoric,
                                    cuda_graphs=True)
    assert evaluator.rollouts_are_replayable == replayable
    evaluator.set_disturbance(torch.zeros(1, STATE))
    assert not evaluator.rollouts_are_replayable


def test_constants_are_copied_once_per_device_and_dtype():
    constant = torch.tensor([1.0, 2.0], dtype=torch.float64)
    like = torch.zeros(3)
    first, second = constant_like(constant, like), constant_like(constant, like)
    assert first is second and first.dtype == torch.float32 and torch.equal(first, constant.float())
    assert constant_like(constant, torch.zeros(3, dtype=torch.float64)) is constant
    assert constant_like(constant, torch.zeros(3, dtype=torch.int64), keep_dtype=True) is constant
    other = torch.tensor([3.0, 4.0], dtype=torch.float64)  # another constant never gets the first one's copy
    assert torch.equal(constant_like(other, like), other.float())
    copies = weakref.ref(constant_like(other, like))
    del other
    gc.collect()
    assert copies() is None, "a copy outlived its constant"
