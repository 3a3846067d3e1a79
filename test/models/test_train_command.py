"""``mbrl-ros train-model``: a model trained offline from a replay-buffer directory, then continued."""

import csv

import numpy as np

from mbrl_ros.cli import main
from mbrl_ros.data import ReplayBuffer
from mbrl_ros.models import DeterministicMLP, load_model

SMALL = ["--kind", "mlp", "--hidden-units", "32", "--max-epochs", "3", "--threads", "1"]


def write_buffer(directory, count: int = 400) -> None:
    rng = np.random.default_rng(0)
    states, actions = rng.normal(size=(count, 3)), rng.normal(size=(count, 1))
    with ReplayBuffer(3, 1, directory=directory) as buffer:
        buffer.add(states, actions, states + 0.1 * np.tanh(actions))


def test_trains_saves_and_continues_a_model(tmp_path, capsys):
    write_buffer(tmp_path / "buffer")
    assert main(["train-model", str(tmp_path / "buffer"), str(tmp_path / "model"), *SMALL]) == 0
    model = load_model(tmp_path / "model")
    assert isinstance(model, DeterministicMLP) and model.hidden_units == 32
    assert "full round" in capsys.readouterr().out
    assert main(["train-model", str(tmp_path / "buffer"), str(tmp_path / "model"), *SMALL]) == 0
    assert "warm round" in capsys.readouterr().out
    rounds = {row["round"] for row in csv.DictReader((tmp_path / "model" / "training.csv").open())}
    assert rounds == {"0"}, "a new trainer numbers its rounds from 0; the CSV holds both runs' epochs"
    assert (tmp_path / "model" / "training.png").stat().st_size > 0


def test_bad_inputs_are_clear_errors(tmp_path, capsys):
    assert main(["train-model", str(tmp_path / "nothing"), str(tmp_path / "model")]) == 2
    assert "not a readable replay-buffer description" in capsys.readouterr().out
    write_buffer(tmp_path / "buffer")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.json").write_text("{}")
    assert main(["train-model", str(tmp_path / "buffer"), str(tmp_path / "model")]) == 2
    assert "cannot continue" in capsys.readouterr().out
    assert main(["train-model", str(tmp_path / "buffer"), str(tmp_path / "other"), "--hidden-units", "0"]) == 2
    assert "hidden_units" in capsys.readouterr().out
    assert main(["train-model", str(tmp_path / "buffer"), str(tmp_path / "other"), "--angle-dims", "1",
                 "--invariant-dims", "1"]) == 2
    assert "both angle_dims and invariant_dims" in capsys.readouterr().out


def test_a_new_model_takes_angle_and_invariant_dimensions(tmp_path):
    write_buffer(tmp_path / "buffer")
    assert main(["train-model", str(tmp_path / "buffer"), str(tmp_path / "model"), *SMALL, "--angle-dims", "1",
                 "--invariant-dims", "0", "2"]) == 0
    model = load_model(tmp_path / "model")
    assert (model.angle_dims, model.invariant_dims) == ([1], [0, 2])
    assert model.network.linear_layers()[0].weight.shape[1] == 2 + 1  # sin and cos of dim 1, the action


def test_a_new_model_takes_quaternion_and_cube_quaternion_dimensions(tmp_path, capsys):
    rng = np.random.default_rng(0)
    quaternions = rng.normal(size=(400, 4))
    quaternions /= np.linalg.norm(quaternions, axis=1, keepdims=True)
    states = np.concatenate([rng.normal(size=(400, 1)), quaternions], 1)
    with ReplayBuffer(5, 1, directory=tmp_path / "buffer") as buffer:
        buffer.add(states, rng.normal(size=(400, 1)), states)
    assert main(["train-model", str(tmp_path / "buffer"), str(tmp_path / "model"), *SMALL, "--quaternion-dims", "1",
                 "--cube-quaternion-dims", "1"]) == 0
    model = load_model(tmp_path / "model")
    assert (model.quaternion_dims, model.cube_quaternion_dims) == ([1], [1])
    assert main(["train-model", str(tmp_path / "buffer"), str(tmp_path / "other"), *SMALL, "--quaternion-dims", "1",
                 "--cube-quaternion-dims", "0"]) == 2
    assert "cube_quaternion_dims must be distinct entries of quaternion_dims" in capsys.readouterr().out


def test_a_new_ensemble_takes_the_beta_nll_loss_and_an_mlp_refuses_it(tmp_path, capsys):
    write_buffer(tmp_path / "buffer")
    ensemble = ["--ensemble-size", "2", "--hidden-layers", "1", "--hidden-units", "16", "--max-epochs", "2",
                "--threads", "1"]
    assert main(["train-model", str(tmp_path / "buffer"), str(tmp_path / "model"), *ensemble, "--nll-beta", "0.5"]) == 0
    assert load_model(tmp_path / "model").nll_beta == 0.5
    assert main(["train-model", str(tmp_path / "buffer"), str(tmp_path / "other"), *ensemble, "--nll-beta", "2"]) == 2
    assert "nll_beta" in capsys.readouterr().out
    assert main(["train-model", str(tmp_path / "buffer"), str(tmp_path / "mlp"), *SMALL, "--nll-beta", "1"]) == 2
    assert "--nll-beta is a loss of the ensemble" in capsys.readouterr().out
