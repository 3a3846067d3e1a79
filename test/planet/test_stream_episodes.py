"""StreamEpisodeBuilder: frames, states and commands from ROS streams joined into PlaNet episodes."""

import numpy as np
import pytest
import torch

from mbrl_ros.planet.episodes import StreamEpisodeBuilder
from mbrl_ros.planet.tasks import PIXEL_CARTPOLE
from mbrl_ros.tasks import make_task

DT = 0.05


@pytest.fixture(scope="module")
def task():
    return make_task(PIXEL_CARTPOLE)


def stream(count: int, seed: int):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (count, 64, 64, 3), dtype=np.uint8)
    states = rng.normal(size=(count, 4))
    commands = rng.uniform(-3, 3, size=(count, 1))
    return frames, states, commands


def test_steps_are_grouped_into_decisions_with_the_tasks_rewards(task):
    frames, states, commands = stream(6, seed=0)  # 5 steps: decisions of 2, 2 and 1 steps
    builder = StreamEpisodeBuilder(task, action_repeat=2)
    for t in range(6):
        if t > 0:
            builder.add_command(commands[t])  # the command of the step that leads to observation t
        if t % 2:  # arrival order of a frame and its state does not matter
            builder.add_state(10 + t * DT, states[t])
            builder.add_frame(10 + t * DT, frames[t])
        else:
            builder.add_frame(10 + t * DT, frames[t])
            builder.add_state(10 + t * DT, states[t])
    episode = builder.end_episode(10 + 5 * DT)
    with torch.no_grad():
        rewards = task.reward(torch.from_numpy(states[:-1]), torch.from_numpy(commands[1:]),
                              torch.from_numpy(states[1:])).numpy()
    assert episode.frames.shape == (4, 3, 64, 64)
    np.testing.assert_array_equal(episode.frames[[0, 1, 2, 3]], frames[[0, 2, 4, 5]].transpose(0, 3, 1, 2))
    np.testing.assert_allclose(episode.actions[:, 0], [0.0, commands[1, 0] / 3, commands[3, 0] / 3,
                                                       commands[5, 0] / 3], rtol=1e-6)
    np.testing.assert_allclose(episode.rewards, [0.0, rewards[0] + rewards[1], rewards[2] + rewards[3], rewards[4]],
                               rtol=1e-5)


def test_observations_of_the_next_episode_that_arrive_early_are_kept_for_it(task):
    frames, states, commands = stream(6, seed=1)
    builder = StreamEpisodeBuilder(task, action_repeat=1)
    for t in range(6):  # episode one: t = 0..2; episode two starts at t = 3 (a reset, then 2 steps)
        if t not in (0, 3):
            builder.add_command(commands[t])
        builder.add_frame(t * DT, frames[t])
        builder.add_state(t * DT, states[t])
    first = builder.end_episode(2 * DT)  # its summary arrives only now
    second = builder.end_episode(5 * DT)
    assert len(first.frames) == 3 and len(second.frames) == 3
    np.testing.assert_array_equal(second.frames[0], frames[3].transpose(2, 0, 1))
    assert builder.end_episode(6 * DT) is None


def test_a_frame_of_the_wrong_size_is_refused(task):
    builder = StreamEpisodeBuilder(task, action_repeat=1)
    with pytest.raises(ValueError, match="64x64 RGB uint8"):
        builder.add_frame(0.0, np.zeros((32, 32, 3), np.uint8))
