"""Offline training on bad input: every problem is reported with the bag, the topic and the counts."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mbrl_ros import cli
from mbrl_ros.offline import OfflineDataError, learner_settings, transitions_from_bag

from synthetic_bags import CONFIG, write_cartpole_bag


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def settings():
    return learner_settings(CONFIG)


@pytest.fixture(scope="module")
def good_bag(tmp_path_factory):
    return write_cartpole_bag(tmp_path_factory.mktemp("good") / "run.bag")


def test_a_well_formed_bag_gives_one_transition_per_control_step(settings, good_bag):
    data = transitions_from_bag(good_bag, settings, progress=False)
    assert len(data) == 39  # 40 states, one transition between each two
    assert np.allclose(np.diff(data.stamps), 0.05)
    assert data.chained()[:-1].all() and not data.warnings()
    assert data.topics["/cartpole_controller/commands"].messages == 40


def test_a_truncated_bag_is_an_error_that_says_so(settings, good_bag, tmp_path):
    bag = shutil.copytree(good_bag, tmp_path / "cut.bag")
    mcap = next(bag.glob("*.mcap"))
    os.truncate(mcap, mcap.stat().st_size // 2)
    with pytest.raises(OfflineDataError, match="truncated"):
        transitions_from_bag(bag, settings, progress=False)


@pytest.mark.parametrize("seed", range(4))
def test_a_corrupted_bag_is_an_error_never_a_silently_shorter_data_set(settings, good_bag, tmp_path, seed):
    bag = shutil.copytree(good_bag, tmp_path / "corrupt.bag")
    mcap = next(bag.glob("*.mcap"))
    rng = np.random.default_rng(seed)
    with open(mcap, "r+b") as file:
        file.seek(int(mcap.stat().st_size * rng.uniform(0.1, 0.7)))
        file.write(rng.integers(0, 256, 1000, dtype=np.uint8).tobytes())
    with pytest.raises(OfflineDataError, match="corrupted"):
        transitions_from_bag(bag, settings, progress=False)


def test_a_missing_topic_is_named_with_what_the_bag_holds(settings, tmp_path):
    bag = write_cartpole_bag(tmp_path / "states-only.bag", topics={"/clock", "/joint_states"})
    with pytest.raises(OfflineDataError, match=r"lacks the topic\(s\) \['/cartpole_controller/commands'\]") as error:
        transitions_from_bag(bag, settings, progress=False)
    assert "/joint_states (40 sensor_msgs/msg/JointState)" in str(error.value)


def test_joint_names_not_matching_the_task_are_reported_with_topic_and_count(settings, tmp_path):
    bag = write_cartpole_bag(tmp_path / "other-robot.bag", joint_names=["shoulder", "elbow"])
    with pytest.raises(OfflineDataError, match="no transitions") as error:
        transitions_from_bag(bag, settings, progress=False)
    assert "/joint_states: 40 messages, 40 rejected" in str(error.value)
    assert "lacks joints ['slider', 'hinge']" in str(error.value)


def test_some_unusable_messages_are_skipped_and_counted(settings, tmp_path):
    bag = write_cartpole_bag(tmp_path / "some-bad.bag", bad_commands={10, 20})
    data = transitions_from_bag(bag, settings, progress=False)
    assert data.topics["/cartpole_controller/commands"].rejected == 2
    assert data.warnings() == [data.topics["/cartpole_controller/commands"].describe("/cartpole_controller/commands")]
    assert "2 rejected" in data.warnings()[0]
    # A robot holds its last command when a bad one arrives: the assembler takes that one as in force.
    assert len(data) == 39
    actions = data.batch.actions[:, 0]
    assert actions[10] == actions[9] and actions[20] == actions[19] and len(set(actions.tolist())) == 37


def test_simulated_time_without_clock_is_refused(settings, tmp_path):
    bag = write_cartpole_bag(tmp_path / "no-clock.bag", topics={"/joint_states", "/cartpole_controller/commands"})
    with pytest.raises(OfflineDataError, match="use_sim_time.*no /clock"):
        transitions_from_bag(bag, settings, progress=False)


def test_a_directory_that_is_no_bag_is_refused(settings, tmp_path):
    with pytest.raises(OfflineDataError, match="not a rosbag2 bag"):
        transitions_from_bag(tmp_path, settings, progress=False)


def test_bad_parameter_files_are_refused_naming_the_file_and_setting(tmp_path):
    def edited(name: str, old: str, new: str) -> Path:
        """The test config with ``old`` replaced by ``new``, written to ``name``."""
        path = tmp_path / name
        path.write_text(CONFIG.read_text().replace(old, new))
        return path

    with pytest.raises(ValueError, match=r"broken.yaml: .*transformer"):
        learner_settings(edited("broken.yaml", "kind: ensemble", "kind: transformer"))
    with pytest.raises(ValueError, match=r"misspelt.yaml: model section for kind 'ensemble': .*'hidden_unit'"):
        learner_settings(edited("misspelt.yaml", "hidden_units: 64", "hidden_unit: 64"))
    with pytest.raises(ValueError, match=r"unknown trainer setting\(s\) \['batch_sise'\]"):
        learner_settings(edited("unknown.yaml", "batch_size: 32", "batch_sise: 32"))
    with pytest.raises(ValueError, match=r"trainer setting batch_size must be int, got 'thirty-two'"):
        learner_settings(edited("mistyped.yaml", "batch_size: 32", "batch_size: thirty-two"))
    null = edited("null.yaml", "batch_size: 32", "batch_size: 32\n      warm_epochs: null")
    assert learner_settings(null).trainer.warm_epochs is None  # a field that may be None takes null
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="not a parameter file"):
        learner_settings(tmp_path / "list.yaml")


def test_the_command_reports_bad_input_and_exits_2(good_bag, tmp_path, capsys):
    bag = shutil.copytree(good_bag, tmp_path / "cut.bag")
    mcap = next(bag.glob("*.mcap"))
    os.truncate(mcap, mcap.stat().st_size // 3)
    assert cli.main(["train", "--bag", str(bag), "--config", str(CONFIG), "--output", str(tmp_path / "m")]) == 2
    assert "error:" in capsys.readouterr().out and not (tmp_path / "m").exists()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    assert cli.main(["train", "--bag", str(good_bag), "--config", str(CONFIG), "--output",
                     str(tmp_path / "taken")]) == 2
    assert "not an empty directory" in capsys.readouterr().out
