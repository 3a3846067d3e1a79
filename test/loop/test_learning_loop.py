"""End to end: the embedded graph (bridge, learner, controller over DDS, lockstep) learns cart-pole swing-up."""

import numpy as np
import yaml

from mbrl_ros.resources import config_path
from mbrl_ros.runner import RunOptions, run
from mbrl_ros.runs import read_csv


def small_cartpole_config(path):
    """The shipped cart-pole config with planner and model sizes that fit a test on 2 cores."""
    config = yaml.safe_load(config_path("cartpole_swingup").read_text())
    controller = config["mpc_controller"]["ros__parameters"]
    controller["mpc"] = {"horizon": 30, "optimizer": "cem", "propagation": "expectation",
                         "optimizer_params": {"population": 200, "elites": 20, "iterations": 4}}
    learner = config["dynamics_learner"]["ros__parameters"]
    learner["model"] = {"kind": "ensemble", "ensemble_size": 3, "hidden_layers": 3, "hidden_units": 128,
                        "activation": "silu", "angle_dims": [1]}
    learner["trainer"].update(max_epochs=50, batch_size=32)
    path.write_text(yaml.safe_dump(config))
    return path


def test_episodes_4_and_5_clearly_beat_the_random_first_episode(tmp_path):
    config = small_cartpole_config(tmp_path / "cartpole.yaml")
    records = []
    run_dir = run(RunOptions(config, episodes=5, mode="lockstep", run_dir=tmp_path / "run"), records.append)
    returns = np.array([record.episode_return for record in records])
    assert len(returns) == 5 and all(record.length == 200 for record in records), returns
    assert records[0].model_version == 0 and records[-1].model_version >= 3
    # A random episode scores about 0 (the pole swings a little, minus the action cost); the most is 200.
    assert returns[3:].mean() > returns[:2].max() + 50, f"no learning: returns {returns.round(1)}"
    np.testing.assert_allclose(read_csv(run_dir / "episodes.csv")["return"], returns)
    assert (run_dir / "learning_curve.png").stat().st_size > 0
