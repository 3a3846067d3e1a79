"""The latent planner: CEM in the RSSM's latent space solves a trivial pixel task with a known optimum."""

import gray_world
import numpy as np
import pytest
import torch

from mbrl_ros.planet import LatentPlanner, LatentPlannerConfig, PlanetAgent, scale_actions

STEPS = 8  # decisions per test episode: the optimum reaches the target from either end in 3


def closed_loop(policy, start: float) -> tuple[float, float]:
    """Return and final grey level of an episode of the true grey world driven by ``policy(frame) -> (1,)``."""
    level, total = start, 0.0
    for _ in range(STEPS):
        level = gray_world.step(level, float(policy(gray_world.render(level))[0]))
        total += gray_world.reward(level)
    return total, level


def optimal_policy(frame: np.ndarray) -> np.ndarray:
    """Full speed towards the target, stopping on it (the optimum: the reward falls with the distance)."""
    level = frame[0, 0, 0] / 255.0
    return np.clip([(gray_world.TARGET - level) / gray_world.STEP], -1.0, 1.0)


@pytest.mark.parametrize("start", [0.0, 1.0])
def test_the_planner_solves_the_grey_world_from_pixels_at_the_paper_config(start):
    model = gray_world.trained_model()
    torch.manual_seed(0)
    agent = PlanetAgent(model, LatentPlanner(model, LatentPlannerConfig(), torch.Generator().manual_seed(1)))
    planner_return, final = closed_loop(lambda frame: agent.act(torch.as_tensor(frame)).numpy(), start)
    best_return, _ = closed_loop(optimal_policy, start)
    idle_return, _ = closed_loop(lambda frame: np.zeros(1), start)
    assert abs(final - gray_world.TARGET) < 0.1, final
    assert planner_return - idle_return > 0.7 * (best_return - idle_return), (planner_return, best_return, idle_return)


def test_one_plan_rolls_all_candidates_in_one_batch_per_step_and_respects_the_bounds():
    model = gray_world.trained_model()
    planner = LatentPlanner(model)
    state = PlanetAgent(model).filter.update(torch.as_tensor(gray_world.render(0.3)))
    batches = []
    original = model.rssm.imagine_step
    model.rssm.imagine_step = lambda state, action, sample=True: batches.append(action.shape) or original(
        state, action, sample)
    try:
        plan = planner.plan(state)
    finally:
        del model.rssm.imagine_step
    assert plan.shape == (12, 1) and plan.abs().max() <= 1.0
    assert batches == [(1000, 1)] * (12 * 10)
    assert np.isfinite(planner.predicted_return)


def test_actions_scale_from_the_normalised_range_to_the_task_units():
    lower, upper = np.array([-3.0, 0.0]), np.array([3.0, 1.0])
    np.testing.assert_allclose(scale_actions(np.array([[-1.0, -1.0], [0.0, 0.5], [2.0, 1.0]]), lower, upper),
                               [[-3.0, 0.0], [0.0, 0.75], [3.0, 1.0]])


def test_exploration_noise_perturbs_the_plan_within_the_bounds():
    model = gray_world.trained_model()
    config = LatentPlannerConfig(horizon=3, candidates=50, iterations=2, top=5)
    frame = torch.as_tensor(gray_world.render(0.2))
    actions = []
    for noise in (0.0, 5.0):
        torch.manual_seed(0)
        agent = PlanetAgent(model, LatentPlanner(model, config, torch.Generator().manual_seed(0)), noise,
                            torch.Generator().manual_seed(0))
        actions.append(agent.act(frame))
    assert not torch.allclose(actions[0], actions[1])
    assert actions[1].abs().max() <= 1.0
