"""``mbrl-ros up`` and the node executables on parameter files they cannot start from: a clear error, exit 2;
``mbrl-ros up`` stopped by a signal: a clean stop, exit 130."""

import ctypes
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mbrl_ros.cli import main
from mbrl_ros.data import ReplayBuffer
from mbrl_ros.resources import config_path

SYS_TGKILL = {"x86_64": 234, "aarch64": 131}.get(platform.machine())


def cartpole_config(tmp_path, **model_settings):
    """The shipped cart-pole parameter file with ``model_settings`` in the learner's model section."""
    config = yaml.safe_load(config_path("cartpole_swingup").read_text())
    config["dynamics_learner"]["ros__parameters"]["model"].update(model_settings)
    path = tmp_path / "cartpole.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_up_refuses_an_empty_list_before_it_starts_anything(tmp_path, capsys):
    path = cartpole_config(tmp_path, angle_dims=[])
    assert main(["up", str(path), "--episodes", "1", "--run-dir", str(tmp_path / "run")]) == 2
    out = capsys.readouterr().out
    assert "dynamics_learner.model.angle_dims: an empty list cannot be a ROS 2 parameter" in out, out
    assert not (tmp_path / "run").exists()


def test_up_names_the_node_that_refuses_a_setting(tmp_path, capsys):
    path = cartpole_config(tmp_path, hidden_units=0)
    assert main(["up", str(path), "--episodes", "1", "--run-dir", str(tmp_path / "run")]) == 2
    out = capsys.readouterr().out
    assert "error: DynamicsLearner: hidden_units must be an integer >= 1, got 0" in out, out


def test_up_names_a_misspelt_model_setting(tmp_path, capsys):
    path = cartpole_config(tmp_path, hidden_unit=64)
    assert main(["up", str(path), "--episodes", "1", "--run-dir", str(tmp_path / "run")]) == 2
    out = capsys.readouterr().out
    assert "error: DynamicsLearner: model section for kind 'ensemble': " in out and "'hidden_unit'" in out, out


def test_up_refuses_a_file_that_is_not_a_parameter_file(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("dynamics_learner: [unclosed\n")
    assert main(["up", str(path), "--episodes", "1", "--run-dir", str(tmp_path / "run")]) == 2
    assert "cannot read the parameter file" in capsys.readouterr().out


def test_up_refuses_a_run_directory_whose_logs_have_other_columns(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "episodes.csv").write_text("episode,return\n0,1.5\n")  # as an older version wrote it
    assert main(["up", "cartpole_swingup", "--episodes", "1", "--run-dir", str(run_dir)]) == 2
    out = capsys.readouterr().out
    assert "episodes.csv has the columns ['episode', 'return']" in out and "give a new run directory" in out, out
    assert (run_dir / "episodes.csv").read_text() == "episode,return\n0,1.5\n"  # left as it was
    assert not (run_dir / "learner").exists()


def test_a_node_executable_says_what_to_do_about_an_empty_list(tmp_path, capsys):
    from mbrl_ros.nodes.dynamics_learner import main as dynamics_learner

    path = cartpole_config(tmp_path, invariant_dims=[])
    assert dynamics_learner(["dynamics_learner", "--ros-args", "--params-file", str(path)]) == 2
    assert "leave the key out" in capsys.readouterr().err


def thread_config(tmp_path, training_threads=None, planner_threads=None):
    """The shipped cart-pole parameter file with the learner's and the controller's torch thread counts set."""
    config = yaml.safe_load(config_path("cartpole_swingup").read_text())
    for node, name, value in (("dynamics_learner", "training_threads", training_threads),
                              ("mpc_controller", "planner_threads", planner_threads)):
        if value is not None:
            config.setdefault(node, {}).setdefault("ros__parameters", {})[name] = value
    path = tmp_path / "threads.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_different_thread_counts_are_named_as_one_in_the_embedded_graph():
    from mbrl_ros.runner import shared_thread_warning

    warning = shared_thread_warning(2, 1)
    assert "training_threads 2 and planner_threads 1 differ" in warning and "both training and planning run on 1" \
        in warning, warning
    assert shared_thread_warning(2, 2) is None


def test_up_warns_of_the_thread_counts_the_nodes_were_built_with(tmp_path, capfd):
    path = thread_config(tmp_path, planner_threads=2)
    config = yaml.safe_load(path.read_text())
    config["mujoco_bridge"]["ros__parameters"]["episode_length"] = -1  # the bridge, built last, stops the run
    path.write_text(yaml.safe_dump(config))
    assert main(["up", str(path), "--episodes", "1", "--run-dir", str(tmp_path / "run")]) == 2
    err = capfd.readouterr().err
    assert "training_threads 1 and planner_threads 2 differ" in err, err

    # The shipped configs: the nodes' own values, defaults included, agree.
    for name in ("shadow_hand_cube", "cartpole_swingup", "half_cheetah"):
        config = yaml.safe_load(config_path(name).read_text())
        config["mujoco_bridge"]["ros__parameters"]["episode_length"] = -1
        path.write_text(yaml.safe_dump(config))
        assert main(["up", str(path), "--episodes", "1", "--run-dir", str(tmp_path / name)]) == 2
        assert "planner_threads" not in capfd.readouterr().err, name


def send_to_another_thread(pid: int, signum: int) -> None:
    """Sends ``signum`` to a thread of process ``pid`` other than its main one, as the kernel may deliver a signal
    sent to the process (tgkill(2), which Python's os module does not wrap for another process)."""
    def takes(tid: int) -> bool:  # the thread does not block the signal
        status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        blocked = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")), 16)
        return not blocked >> (signum - 1) & 1

    tid = max(tid for tid in map(int, os.listdir(f"/proc/{pid}/task")) if tid != pid and takes(tid))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_TGKILL, pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), f"tgkill({pid}, {tid}, {signum}) failed")


@pytest.mark.parametrize("signum, to_a_thread", [(signal.SIGINT, False), (signal.SIGTERM, False),
                                                 (signal.SIGINT, True)])
def test_a_signal_stops_a_run_cleanly(tmp_path, signum, to_a_thread):
    run_dir = tmp_path / "run"
    # SIGINT ignored at start, as a shell starts a background job: the run must still stop on it.
    process = subprocess.Popen([str(Path(sys.prefix) / "bin" / "mbrl-ros"), "up", "cartpole_swingup", "--episodes",
                                "100", "--run-dir", str(run_dir)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 120
        episodes = run_dir / "episodes.csv"
        while not (episodes.exists() and len(episodes.read_text().splitlines()) >= 2):
            assert process.poll() is None and time.monotonic() < deadline, "no episode ended"
            time.sleep(0.2)
        if to_a_thread:
            if SYS_TGKILL is None:
                pytest.skip(f"tgkill's system call number on {platform.machine()} is not known here")
            send_to_another_thread(process.pid, signum)
        else:
            process.send_signal(signum)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130 and "interrupted" in out, out
    with ReplayBuffer.open(run_dir / "learner" / "transitions") as buffer:
        assert len(buffer) >= 200  # the first episode's transitions (200 steps) were flushed
    assert len(episodes.read_text().splitlines()) < 101
