"""PlaNet's training loop: the pixel environment, sequence chunks, learning, and the ``mbrl-ros planet`` command."""

import json

import numpy as np
import pytest
import torch

from mbrl_ros.cli import main
from mbrl_ros.models import load_model
from mbrl_ros.planet.training import Episode, EpisodeBuffer, PixelEnv, PlanetConfig, PlanetTrainer, run_episode
from mbrl_ros.runs import read_csv

TINY = ["--seed-episodes", "2", "--episodes", "1", "--episode-length", "20", "--train-steps", "2", "--batch-size", "2",
        "--chunk-length", "6", "--candidates", "20", "--iterations", "2", "--top", "4"]


@pytest.fixture(scope="module")
def env():
    env = PixelEnv(action_repeat=3, seed=7, episode_length=10)
    yield env
    env.close()


def test_action_repeat_holds_each_action_and_sums_its_rewards(env):
    first = env.reset()
    assert first.shape == (3, 64, 64) and first.dtype == np.uint8
    episode = run_episode(env, lambda frame: np.ones(1))
    assert env.decisions_per_episode == 4 and len(episode.frames) == 5  # 10 periods: 3 + 3 + 3 + 1
    assert episode.rewards[0] == 0 and np.all(episode.actions[0] == 0) and np.all(episode.actions[1:] == 1)
    assert env.simulation.length == 10
    single = PixelEnv(action_repeat=1, seed=7, episode_length=10)
    try:
        single.reset()
        single.reset()  # the same episode index, hence seed, as the repeated run's
        rewards = [single.step(np.ones(1))[1] for _ in range(10)]
    finally:
        single.close()
    np.testing.assert_allclose(episode.rewards[1:], [sum(rewards[0:3]), sum(rewards[3:6]), sum(rewards[6:9]),
                                                     rewards[9]], rtol=1e-6)


def test_frames_are_equal_for_equal_seeds_and_show_the_pole_move():
    envs = [PixelEnv(action_repeat=3, seed=7, episode_length=10) for _ in range(2)]
    try:
        episodes = [run_episode(env, lambda frame: -np.ones(1)) for env in envs]
    finally:
        for env in envs:
            env.close()
    assert np.array_equal(episodes[0].frames, episodes[1].frames)
    assert not np.array_equal(episodes[0].frames[0], episodes[0].frames[-1])


def chunk_episode(length: int, offset: float) -> Episode:
    steps = np.arange(length, dtype=np.float32) + offset
    frames = np.broadcast_to(steps.astype(np.uint8)[:, None, None, None], (length, 3, 64, 64)).copy()
    return Episode(frames, steps[:, None].copy(), steps.copy())


def test_chunks_are_contiguous_time_major_slices_of_long_enough_episodes():
    buffer = EpisodeBuffer()
    buffer.add(chunk_episode(12, 0.0))
    buffer.add(chunk_episode(4, 100.0))  # too short for a chunk of 6: never drawn
    frames, actions, rewards = buffer.sample(32, 6, np.random.default_rng(0))
    assert frames.shape == (6, 32, 3, 64, 64) and actions.shape == (6, 32, 1) and rewards.shape == (6, 32)
    assert torch.all(rewards < 100) and torch.all(rewards.diff(dim=0) == 1)
    assert torch.equal(actions[..., 0], rewards) and torch.equal(frames[:, :, 0, 0, 0].float(), rewards)
    assert len(set(rewards[0].tolist())) > 3  # several starts drawn
    with pytest.raises(ValueError, match="no episode holds a chunk of 20 frames"):
        buffer.sample(2, 20, np.random.default_rng(0))
    with pytest.raises(ValueError, match="equal length"):
        buffer.add(Episode(np.zeros((3, 3, 64, 64), np.uint8), np.zeros((2, 1), np.float32), np.zeros(3, np.float32)))


def test_training_on_seed_episodes_lowers_the_loss():
    config = PlanetConfig(seed_episodes=2, episode_length=24, batch_size=4, chunk_length=8,
                          model={"depth": 4, "deterministic": 16, "stochastic": 4, "hidden": 16, "free_nats": 1.0})
    trainer = PlanetTrainer(config)
    try:
        trainer.seed()
        first = trainer.train(3)
        trainer.train(30)
        last = trainer.train(3)
        real, decoded, context = trainer.predict_frames(trainer.buffer.episodes[0], context=5, length=15)
        episode = trainer.buffer.episodes[0]
        short = Episode(episode.frames[:3], episode.actions[:3], episode.rewards[:3])
        short_real, _, short_context = trainer.predict_frames(short, context=5)
    finally:
        trainer.close()
    assert last["image"] < 0.5 * first["image"], (first, last)
    assert real.shape == decoded.shape == (13, 64, 64, 3) and context == 5  # 24 periods / 2 + the first frame
    quantisation_error = np.abs(real[0].astype(int) - episode.frames[0].transpose(1, 2, 0))
    assert quantisation_error.max() <= 8 and quantisation_error.mean() < 4  # the real frame, at 5 bits
    assert short_real.shape[0] == 3 and short_context == 2


def test_the_command_writes_curve_frames_and_a_loadable_model(tmp_path, capsys):
    output = tmp_path / "run"
    assert main(["planet", str(output), *TINY]) == 0
    curve = read_csv(output / "curve.csv")
    assert curve["episode"].tolist() == [0, 1, 2]
    assert curve["env_steps"].tolist() == [20, 40, 60]
    assert np.isfinite(curve["return"]).all() and np.isfinite(curve["image_loss"][2])
    assert (output / "curve.png").stat().st_size > 0 and (output / "frames.png").stat().st_size > 0
    assert json.loads((output / "config.json").read_text())["planner"]["candidates"] == 20
    model = load_model(output / "model", expected_kind="rssm")
    assert model.action_dim == 1 and model.depth == 16
    assert main(["planet", str(output), *TINY]) == 2
    assert "already holds a run" in capsys.readouterr().out


def test_the_command_rejects_bad_settings_with_a_message(tmp_path, capsys):
    assert main(["planet", str(tmp_path / "bad"), "--action-repeat", "0"]) == 2
    assert "action_repeat must be a positive integer" in capsys.readouterr().out
    assert main(["planet", str(tmp_path / "bad"), "--task", "no_such_task"]) == 2
    assert "unknown task" in capsys.readouterr().out
    assert main(["planet", str(tmp_path / "bad"), "--episode-length", "20", "--chunk-length", "30"]) == 2
    assert "chunk_length must be in [2, 11]" in capsys.readouterr().out
    assert not (tmp_path / "bad").exists()


def test_the_paper_preset_and_command_line_overrides():
    from mbrl_ros.cli import build_parser
    from mbrl_ros.planet.cli import config_from_args

    paper = PlanetConfig.paper(episodes=7)
    assert (paper.batch_size, paper.chunk_length, paper.train_steps, paper.episodes) == (50, 50, 100, 7)
    assert paper.model["depth"] == 32 and paper.model["deterministic"] == 200 and paper.model["stochastic"] == 30
    assert (paper.planner.horizon, paper.planner.candidates, paper.planner.iterations, paper.planner.top) == (
        12, 1000, 10, 100)
    args = build_parser().parse_args(["planet", "out", "--paper", "--candidates", "300", "--action-repeat", "4"])
    config = config_from_args(args)
    assert config.planner.candidates == 300 and config.planner.iterations == 10 and config.action_repeat == 4
    assert config.batch_size == 50
