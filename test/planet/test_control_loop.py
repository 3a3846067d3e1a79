"""PlanetControlLoop, the planet_controller's ROS-free core: frames checked, decisions every action_repeat
frames, the applied command (not the planned one) folded into the filter."""

import numpy as np
import pytest
import torch

from mbrl_ros.models.latent import LatentDynamicsModel
from mbrl_ros.planet import LatentPlannerConfig
from mbrl_ros.planet.control import PlanetControlLoop, checked_frame

SMALL_PLANNER = LatentPlannerConfig(horizon=3, candidates=30, iterations=2, top=3)


def make_loop(action_repeat: int = 2) -> PlanetControlLoop:
    torch.manual_seed(0)
    model = LatentDynamicsModel(1, depth=4, deterministic=16, stochastic=4, hidden=16)
    return PlanetControlLoop(model, np.array([-3.0]), np.array([3.0]), action_repeat, SMALL_PLANNER, seed=0)


def frame(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)


def test_frames_must_be_64_by_64_rgb_bytes():
    assert checked_frame(frame(0)).shape == (3, 64, 64)
    for bad in (frame(0)[:32], frame(0)[..., :1], frame(0).astype(np.float32)):
        with pytest.raises(ValueError, match="64x64 RGB uint8"):
            checked_frame(bad)


def test_decisions_every_action_repeat_frames_within_the_bounds():
    loop = make_loop(action_repeat=3)
    commands = [loop.step(frame(t), None) for t in range(7)]
    assert all(-3.0 <= c[0] <= 3.0 for c in commands)
    assert commands[0] is commands[1] is commands[2] and commands[3] is commands[4] is commands[5]
    assert commands[6] is not commands[5] and loop.frames == 7
    loop.reset()
    assert loop.frames == 0


def test_the_applied_command_is_what_the_filter_folds_in():
    outcomes = []
    for applied in (np.array([-3.0]), np.array([3.0])):
        loop = make_loop(action_repeat=1)
        loop.step(frame(0), None)
        torch.manual_seed(1)
        loop.step(frame(1), applied)
        outcomes.append(loop.agent.filter.state.deterministic.clone())
    assert not torch.allclose(outcomes[0], outcomes[1])


def test_a_model_for_another_action_count_is_refused():
    loop = make_loop()
    with pytest.raises(ValueError, match="the model takes 2 actions, the task has 1"):
        loop.set_model(LatentDynamicsModel(2, depth=4, deterministic=16, stochastic=4, hidden=16))
