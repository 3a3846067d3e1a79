"""``mbrl-ros task``: a task's layout, topics and actuator order; a frame; random episodes; bad names refused."""

import matplotlib.image

from mbrl_ros.cli import main


def test_the_task_command_describes_the_state_topics_and_the_command_order(capsys, tmp_path):
    frame = tmp_path / "frame.png"
    code = main(["task", "pusher", "--option", "episode_length=3", "--render", str(frame), "--size", "32",
                 "--episodes", "2", "--seed", "4"])
    out = capsys.readouterr().out
    assert code == 0
    assert "dt 0.05 s, 3 steps per episode" in out
    assert "[16:18] object_velocity_xy: /mujoco_bridge/object_twist vx, vy" in out
    assert "[0] r_shoulder_pan_joint: force/torque on r_shoulder_pan_joint, [-2, 2]" in out
    assert "episode 1 (seed 5)" in out and "3 steps" in out
    assert matplotlib.image.imread(frame).shape[:2] == (32, 32)


def test_the_task_command_refuses_unknown_tasks_and_bad_options(capsys):
    assert main(["task", "no_such_task"]) == 2
    assert "unknown task" in capsys.readouterr().err
    assert main(["task", "reacher", "--option", "episode_length"]) == 2
    assert "KEY=JSON" in capsys.readouterr().err
