"""Record a short lockstep run, read the bag back, train from it as the live learner would, start from the model.

One cartpole run of three 60-step episodes (`mbrl-ros up`'s runner, real nodes over DDS, exploring only) is
recorded once for the module; its learner's transitions, taken live, are the reference for the bag's.
"""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rclpy
import torch
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from mbrl_ros import cli
from mbrl_ros.data import ReplayBuffer
from mbrl_ros.data.bags import message_typestore
from mbrl_ros.learning import Learner, RetrainPolicy
from mbrl_ros.msg import ModelUpdate, PlannerStatus
from mbrl_ros.nodes.conversions import seconds_to_stamp
from mbrl_ros.nodes.dynamics_learner import LATCHED_QOS, DynamicsLearner
from mbrl_ros.nodes.mpc_controller import MpcController
from mbrl_ros.offline import learner_settings, train_from_bag, transitions_from_bag
from mbrl_ros.runner import RunOptions, run

from support import wait_for
from synthetic_bags import CONFIG, JOINTS

EPISODES, STEPS = 3, 60  # the config's episode_length
COMMANDS_TOPIC = "/cartpole_controller/commands"


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("offline") / "run"
    run(RunOptions(CONFIG, EPISODES, run_dir=run_dir, record=True), lambda record: None)
    return run_dir


@pytest.fixture(scope="module")
def settings():
    return learner_settings(CONFIG)


@pytest.fixture(scope="module")
def trained(recorded_run, settings, tmp_path_factory):
    """``mbrl-ros train`` on the recorded bag, 20% held out for the report."""
    output = tmp_path_factory.mktemp("trained") / "model"
    assert cli.main(["train", "--bag", str(recorded_run / "bag"), "--config", str(CONFIG),
                     "--output", str(output)]) == 0
    return output


def read_with_rosbags(bag: Path) -> dict[str, list]:
    """Every message of the bag decoded by rosbags' own reader and typestore, per topic."""
    store = message_typestore()
    messages: dict[str, list] = {}
    with Reader(bag) as reader:
        for connection, _, data in reader.messages():
            messages.setdefault(connection.topic, []).append(store.deserialize_cdr(data, connection.msgtype))
    return messages


def rows(*arrays: np.ndarray) -> list[bytes]:
    return [b"".join(part[i].tobytes() for part in arrays) for i in range(len(arrays[0]))]


def test_the_recorded_bag_reads_back_with_the_standard_reader(recorded_run, settings):
    messages = read_with_rosbags(recorded_run / "bag")
    episodes = messages["/mujoco_bridge/episode"]
    assert [e.episode for e in episodes] == list(range(EPISODES)) and {e.length for e in episodes} == {STEPS}
    states = messages["/joint_states"]
    assert len(states) >= EPISODES * (STEPS + 1)  # and the start of the next episode, while the run stops
    assert len(messages[COMMANDS_TOPIC]) >= EPISODES * STEPS
    assert abs(len(messages["/clock"]) - len(states)) <= 1
    assert all(list(s.name) == JOINTS and len(s.position) == len(s.velocity) == 2 for s in states)
    stamps = np.array([s.header.stamp.sec + 1e-9 * s.header.stamp.nanosec for s in states])
    assert np.all(np.diff(stamps) >= 0) and len(np.unique(stamps)) >= len(stamps) - 1  # the first may repeat
    assert np.allclose(np.diff(np.unique(stamps)), settings.task.dt, atol=1e-6)  # sim time runs on across resets
    low, high = settings.task.action_bounds
    commands = np.array([c.data for c in messages[COMMANDS_TOPIC]])
    assert commands.shape[1] == 1 and np.all(commands >= low) and np.all(commands <= high)
    assert len(np.unique(commands)) > EPISODES * STEPS // 2  # exploration: the commands vary


def test_the_bag_gives_the_transitions_the_learner_took_live(recorded_run, settings):
    live = ReplayBuffer.open(recorded_run / "learner" / "transitions").all()
    data = transitions_from_bag(recorded_run / "bag", settings, progress=False)
    assert len(live) >= 0.98 * EPISODES * STEPS and not data.warnings()
    # The recorded episodes only: the run goes on a little after the last one, and at the end of the bag the
    # offline reader completes what the learner still held back (its reorder window) when the run stopped.
    n = EPISODES * STEPS
    live_rows = set(rows(live.states[:n], live.actions[:n], live.next_states[:n], live.rewards[:n]))
    bag_rows = set(rows(data.batch.states[:n], data.batch.actions[:n], data.batch.next_states[:n],
                        data.batch.rewards[:n]))
    # The same transitions, but for one the recorder may miss at the very start (and so one more at the end).
    assert len(bag_rows - live_rows) <= 2 and len(live_rows - bag_rows) <= 2
    breaks = np.flatnonzero(~data.chained())  # consecutive within each episode
    assert list(breaks[:EPISODES]) == [STEPS * (k + 1) - 1 for k in range(EPISODES)]


def test_training_from_the_bag_reaches_the_validation_loss_of_the_live_transitions(recorded_run, settings, tmp_path):
    # The run goes on a little while it stops: both sides take the transitions of the recorded episodes only.
    live = ReplayBuffer.open(recorded_run / "learner" / "transitions").all()[: EPISODES * STEPS]
    last_episode_end = read_with_rosbags(recorded_run / "bag")["/mujoco_bridge/episode"][-1].header.stamp
    torch.manual_seed(settings.trainer.seed)
    trainer = dataclasses.replace(settings.trainer, progress=False)
    learner = Learner(tmp_path / "live", settings.model_factory(), trainer, RetrainPolicy(min_transitions=10),
                      learnable=settings.task.learnable)  # as the learner node builds it
    learner.add(live.states, live.actions, live.next_states, live.rewards, live.dones)
    live_release = learner.train_now()
    learner.close()

    offline = train_from_bag(recorded_run / "bag", settings, tmp_path / "offline", holdout=0.0, progress=False,
                             end=last_episode_end.sec + 1e-9 * last_episode_end.nanosec)
    assert offline.train_transitions == len(offline.data) == len(live) and offline.one_step is None
    first_epoch = float((tmp_path / "offline" / "training.csv").read_text().splitlines()[1].split(",")[5])
    assert offline.validation_nll < first_epoch - 0.2  # it learned
    assert offline.validation_nll == pytest.approx(live_release.validation_nll, abs=0.02)


def test_training_twice_from_one_bag_gives_the_same_model(recorded_run, trained, tmp_path):
    # The trainer's seed draws the split, the bootstrap, the batch order and the initial weights.
    again = tmp_path / "again"
    assert cli.main(["train", "--bag", str(recorded_run / "bag"), "--config", str(CONFIG),
                     "--output", str(again)]) == 0
    weights = Path("models") / "v000001" / "weights.safetensors"
    assert (again / weights).read_bytes() == (trained / weights).read_bytes()


def test_the_report_scores_held_out_data_per_dimension_and_horizon(trained, settings):
    report = trained / "report"
    for name in ("one_step_error", "open_loop_error"):
        assert (report / f"{name}.png").stat().st_size > 5000
    lines = (report / "one_step_error.csv").read_text().splitlines()
    assert lines[0] == "dimension,label,rmse,baseline_rmse" and len(lines) == 1 + settings.task.state_dim
    rmse, baseline = (np.array([float(line.split(",")[k]) for line in lines[1:]]) for k in (2, 3))
    assert np.all(rmse < 0.7 * baseline)  # better than "nothing moves" in every dimension
    table = np.genfromtxt(report / "open_loop_error.csv", delimiter=",", names=True)
    assert list(table["horizon"]) == list(range(1, 11))  # the controller's planning horizon
    summary = json.loads((report / "summary.json").read_text())
    assert summary["holdout_transitions"] == np.ceil(0.2 * summary["transitions"])
    assert summary["train_transitions"] == summary["transitions"] - summary["holdout_transitions"]
    assert np.all(np.diff(table["windows"]) <= 0) and table["windows"][0] == summary["holdout_transitions"]
    assert np.all(table["normalized_rmse"] < table["baseline_normalized_rmse"])
    assert table["normalized_rmse"][-1] > table["normalized_rmse"][0]  # errors compound open loop
    assert summary["topics"]["/joint_states"]["rejected"] == 0


def test_the_plot_command_redraws_the_training_curves_and_the_report(trained, tmp_path, capsys):
    redrawn = shutil.copytree(trained, tmp_path / "redrawn")
    pictures = [Path("training.png"), Path("report/one_step_error.png"), Path("report/open_loop_error.png")]
    for picture in pictures:
        (redrawn / picture).unlink()
    assert cli.main(["plot", str(redrawn)]) == 0
    printed = capsys.readouterr().out.split()
    for picture in pictures:
        assert str(redrawn / picture) in printed and (redrawn / picture).stat().st_size > 5000


def test_the_learner_node_continues_from_the_trained_directory(trained, ros_executor, tmp_path):
    trained = shutil.copytree(trained, tmp_path / "continued")
    config = tmp_path / "trains.yaml"  # (node-specific file parameters win over -p)
    config.write_text(CONFIG.read_text().replace("min_transitions: 100000", "min_transitions: 10"))
    versions = []
    listener = rclpy.create_node("listener", context=ros_executor.context)
    listener.create_subscription(ModelUpdate, "/model_update", lambda msg: versions.append(msg.version), LATCHED_QOS)
    ros_executor.add_node(listener)
    learner = DynamicsLearner(context=ros_executor.context,
                              cli_args=["--ros-args", "--params-file", str(config), "-p", f"data_dir:={trained}"])
    ros_executor.add_node(learner)
    assert wait_for(lambda: versions == [1], 10), f"the resumed model was not published: {versions}"
    summary = json.loads((trained / "report" / "summary.json").read_text())
    assert len(learner.learner.buffer) == summary["train_transitions"]  # the bag's training transitions, resumed
    release = learner.learner.train_now()  # a further round continues the same model and version line
    assert release.version == 2 and (trained / "models" / "v000002").is_dir()
    assert wait_for(lambda: versions == [1, 2], 10)


def test_the_controller_plans_with_the_trained_model_from_the_start(trained, ros_executor):
    node = rclpy.create_node("robot", context=ros_executor.context)
    commands, statuses = [], []
    node.create_subscription(Float64MultiArray, COMMANDS_TOPIC, lambda msg: commands.append(msg.data), 10)
    node.create_subscription(PlannerStatus, "/mpc_controller/status", statuses.append, 10)
    states = node.create_publisher(JointState, "/joint_states", 10)
    ros_executor.add_node(node)
    controller = MpcController(context=ros_executor.context,
                               cli_args=["--ros-args", "--params-file", str(CONFIG), "-p", f"model_dir:={trained}"])
    ros_executor.add_node(controller)
    assert controller.model_version == 1
    assert wait_for(lambda: states.get_subscription_count() >= 1, 10)
    state = JointState(name=JOINTS, position=[0.0, 0.1], velocity=[0.0, 0.0])
    state.header.stamp = seconds_to_stamp(1.0)
    states.publish(state)
    assert wait_for(lambda: statuses and commands, 20), "no plan for the first state"
    assert statuses[0].model_version == 1 and statuses[0].iterations > 0


def test_the_controller_refuses_a_directory_without_a_model(ros_executor, tmp_path):
    with pytest.raises(ValueError, match="holds no model"):
        MpcController(context=ros_executor.context,
                      cli_args=["--ros-args", "--params-file", str(CONFIG), "-p", f"model_dir:={tmp_path}"])
