"""Offset-free MPC: the model's error on the last step is carried into the next plan as a disturbance."""

import pytest
import torch

from mbrl_ros.planning import MPC, MPCConfig
from mbrl_ros.planning.reference_systems import LinearQuadraticSystem

SYSTEM = LinearQuadraticSystem.double_integrator()
PUSH = 2.0  # N: a constant force the model does not know of (wind, a cable, a tilted rail)


def pushed_step(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """The true dynamics: the model's, plus the unmodelled push."""
    return SYSTEM.step(state, action + PUSH)


def controller(**settings) -> MPC:
    config = {"optimizer": "cem", "optimizer_params": {"population": 200, "iterations": 4}, "horizon": 10,
              "propagation": "deterministic", "seed": 0, **settings}
    return MPC(SYSTEM.model(), SYSTEM.reward, SYSTEM.action_low, SYSTEM.action_high, config)


def mean_offset(mpc: MPC, steps: int = 60, settled: int = 20) -> float:
    """Mean |position| (m) over the last ``settled`` steps of a closed-loop episode from rest at 1 m."""
    state, positions = torch.tensor([1.0, 0.0]), []
    for _ in range(steps):
        state = pushed_step(state[None], mpc.act(state)[None])[0]
        positions.append(abs(float(state[0])))
    return sum(positions[-settled:]) / settled


def test_a_constant_unmodelled_push_leaves_an_offset_that_the_correction_removes():
    plain, corrected = mean_offset(controller()), mean_offset(controller(offset_correction=True))
    assert plain > 0.1  # the model's error holds the mass off its target
    assert corrected < 0.25 * plain


def test_the_disturbance_is_the_last_steps_model_error_per_start_state_and_resets():
    mpc = controller(offset_correction=True)
    states = torch.tensor([[1.0, 0.0], [-0.5, 0.3]])
    actions = mpc.act(states)
    assert mpc.evaluator.disturbance is None  # no step taken yet
    states = pushed_step(states, actions)
    mpc.act(states)
    expected = (SYSTEM.b.T * PUSH).expand(2, -1)  # what the push adds to a step, the same for both
    torch.testing.assert_close(mpc.evaluator.disturbance, expected)
    mpc.plan(states, shift_steps=0)  # no step since: the estimate stays
    torch.testing.assert_close(mpc.evaluator.disturbance, expected)
    mpc.plan(states, shift_steps=3)  # a gap: no one-step error to measure
    assert mpc.evaluator.disturbance is None
    mpc.reset()
    assert mpc.evaluator.disturbance is None


def test_the_disturbance_decays_along_the_horizon():
    mpc = controller(offset_correction=True, offset_decay=0.5)
    mpc.evaluator.set_disturbance(torch.tensor([[1.0, 0.0]]), 0.5)
    rollout = mpc.evaluator.rollout(torch.zeros(1, 2), torch.zeros(1, 1, 4, 1), [torch.Generator()])
    torch.testing.assert_close(rollout.states[0, 0, 0, 1:, 0], torch.tensor([1.0, 1.5, 1.75, 1.875]))


@pytest.mark.parametrize("decay", [-0.1, 1.5, "fast"])
def test_an_offset_decay_outside_0_1_is_rejected(decay):
    with pytest.raises(ValueError, match="offset_decay"):
        MPCConfig(offset_decay=decay)


def test_an_offset_correction_that_is_not_true_or_false_is_rejected():
    with pytest.raises(ValueError, match="offset_correction must be true or false"):
        MPCConfig(offset_correction="yes")
