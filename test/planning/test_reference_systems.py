"""The known-dynamics reference systems: LQR optimality, cartpole physics, the model wrapper."""

import math

import pytest
import torch

from mbrl_ros.planning.reference_systems import CartpoleSwingUp, KnownDynamics, LinearQuadraticSystem


def test_the_lqr_gain_beats_every_perturbed_gain():
    system = LinearQuadraticSystem.double_integrator()
    gain = system.lqr_gain()
    start = torch.tensor([1.0, -0.5])
    optimal = system.episode_cost(start, lambda x: -gain @ x, 200)
    for direction in torch.eye(2):
        for scale in (-0.1, 0.1):
            perturbed = gain + scale * direction * gain.abs().max()
            assert system.episode_cost(start, lambda x, k=perturbed: -k @ x, 200) > optimal


def test_known_dynamics_follow_the_model_contract():
    system = LinearQuadraticSystem.double_integrator()
    model = system.model()
    states, actions = torch.randn(7, 2), torch.randn(7, 1)
    mean, variance = model.predict(states, actions)
    assert mean.shape == (1, 7, 2) and variance is None
    assert torch.allclose(mean[0], system.step(states, actions))
    blocked, _ = model.predict(states[None], actions[None])
    assert torch.equal(blocked, mean)
    with pytest.raises(ValueError, match="one-member"):
        model.predict(states.expand(2, -1, -1), actions.expand(2, -1, -1))
    assert isinstance(model, KnownDynamics) and model.device == torch.device("cpu")


def cartpole_energy(state):
    """Mechanical energy (J) of the cart-pole (uniform pole, 0.1 kg, 0.6 m) for states (N, 4)."""
    _, theta, x_dot, theta_dot = state.unbind(-1)
    mass, length = 0.1, 0.6
    pole_x_dot = x_dot + 0.5 * length * torch.cos(theta) * theta_dot
    pole_y_dot = -0.5 * length * torch.sin(theta) * theta_dot
    kinetic = 0.5 * 1.0 * x_dot**2 + 0.5 * mass * (pole_x_dot**2 + pole_y_dot**2)
    kinetic = kinetic + 0.5 * (mass * length**2 / 12) * theta_dot**2
    return kinetic + mass * 9.81 * 0.5 * length * torch.cos(theta)


def test_the_unforced_cartpole_keeps_its_energy_and_momentum():
    task = CartpoleSwingUp()
    state = torch.tensor([[0.0, 0.5, 0.2, 0.0], [1.0, 2.5, -0.3, 1.0]])
    energy = cartpole_energy(state)
    for _ in range(40):  # 2 s
        state = task.step(state, torch.zeros(2, 1))
    assert torch.allclose(cartpole_energy(state), energy, rtol=0.02, atol=0.005)
    assert not torch.allclose(state[:, 1], torch.tensor([0.5, 2.5]), atol=0.1)  # the pole did swing


def test_pushing_the_cart_accelerates_it_and_tips_the_pole_back():
    task = CartpoleSwingUp()
    state = task.step(torch.zeros(1, 4), torch.ones(1, 1))
    x, theta, x_dot, theta_dot = state[0]
    assert x > 0 and x_dot > 0 and theta < 0 and theta_dot < 0


def test_the_swing_up_reward_peaks_upright_over_the_origin():
    task = CartpoleSwingUp()
    upright, down = torch.zeros(1, 4), torch.tensor([[0.0, math.pi, 0.0, 0.0]])
    no_action = torch.zeros(1, 1)
    assert task.reward(down, no_action, upright).item() == pytest.approx(1.0)
    assert task.reward(down, no_action, down).item() == pytest.approx(math.exp(-4.0), rel=1e-5)
    assert task.reward(down, torch.ones(1, 1), upright).item() == pytest.approx(0.99)
    starts = task.initial_states(500, torch.Generator().manual_seed(0))
    assert starts.shape == (500, 4) and abs(starts[:, 1].mean().item() - math.pi) < 0.02
