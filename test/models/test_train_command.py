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
