"""``mbrl-ros gridworld``: value tables and arrows, bad input, and Dyna-Q curves as CSV and PNG."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from mbrl_ros.cli import main
from mbrl_ros.tabular import plot_steps_per_episode, read_steps_csv, write_steps_csv


def table_after(output: str, heading: str, rows: int) -> list[list[str]]:
    lines = output.splitlines()
    start = lines.index(heading) + 1
    return [line.split() for line in lines[start : start + rows]]


def test_value_iteration_prints_values_and_greedy_arrows(capsys):
    assert main(["gridworld", "--ascii"]) == 0
    output = capsys.readouterr().out
    assert "value iteration: 4 sweeps" in output
    values = np.array(table_after(output, "state values:", 4), dtype=float)
    rows, columns = np.indices((4, 4))
    np.testing.assert_array_equal(values, -np.minimum(rows + columns, 6 - rows - columns))
    assert table_after(output, "greedy policy (all tied actions shown):", 4)[0] == ["G", "<", "<", "v<"]


def test_random_policy_prints_the_values_of_figure_4_1(capsys):
    assert main(["gridworld", "--method", "random-policy"]) == 0
    output = capsys.readouterr().out
    assert "evaluation of the equiprobable random policy" in output
    assert table_after(output, "state values:", 1)[0] == ["0.0", "-14.0", "-20.0", "-22.0"]
    assert "←" in output


def test_policy_iteration_prints_the_same_values_as_value_iteration(capsys):
    main(["gridworld", "dyna-maze", "--decimals", "4"])
    by_value = table_after(capsys.readouterr().out, "state values:", 6)
    assert main(["gridworld", "dyna-maze", "--decimals", "4", "--method", "policy-iteration"]) == 0
    output = capsys.readouterr().out
    assert "policy iteration:" in output and "policy evaluations" in output
    assert table_after(output, "state values:", 6) == by_value
    assert by_value[2][0] == f"{0.95**13:.4f}"  # the start, 14 moves from the goal


def test_a_map_file_is_solved_with_overridden_rewards(tmp_path, capsys):
    map_file = tmp_path / "corridor.txt"
    map_file.write_text("S...G\n")
    assert main(["gridworld", str(map_file), "--step-reward", "-1", "--goal-reward", "-1", "--discount", "1"]) == 0
    output = capsys.readouterr().out
    assert "1x5 grid, 5 states (1 terminal), discount 1, step reward -1, goal reward -1" in output
    assert table_after(output, "state values:", 1)[0] == ["-4.0", "-3.0", "-2.0", "-1.0", "0.0"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("S..\n..\n..G\n", "map line 2 has 2 cells"),
        ("S.x\n..G\n", "map line 1, column 3: unknown cell 'x'"),
        ("", "empty"),
    ],
)
def test_a_malformed_map_file_is_a_clear_error(tmp_path, capsys, text, message):
    map_file = tmp_path / "bad.txt"
    map_file.write_text(text)
    assert main(["gridworld", str(map_file)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("mbrl-ros gridworld: error: ") and message in captured.err
    assert captured.out == ""


def test_an_unknown_map_is_a_clear_error(tmp_path, capsys):
    assert main(["gridworld", str(tmp_path / "missing.txt")]) == 2
    error = capsys.readouterr().err
    assert "neither a built-in map (example-4.1, dyna-maze) nor a readable text file" in error


@pytest.mark.parametrize(
    "arguments",
    [["--slip", "1.5"], ["--discount", "nan"], ["--tol", "0"], ["--dyna", "-1"], ["--runs", "0"], ["--seed", "-3"]],
)
def test_bad_options_are_rejected_by_the_parser(capsys, arguments):
    with pytest.raises(SystemExit) as exit_info:
        main(["gridworld", *arguments])
    assert exit_info.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_non_finite_rewards_are_rejected(capsys):
    assert main(["gridworld", "--step-reward", "inf"]) == 2
    assert "step_reward and goal_reward must be finite" in capsys.readouterr().err


def test_running_out_of_sweeps_prints_a_warning_and_exits_1(capsys):
    assert main(["gridworld", "--method", "random-policy", "--max-sweeps", "3"]) == 1
    captured = capsys.readouterr()
    assert "NOT CONVERGED" in captured.out and "did not converge" in captured.err
    assert table_after(captured.out, "state values:", 1)[0] == ["0.0", "-2.4", "-2.9", "-3.0"]


def test_dyna_writes_steps_per_episode_as_csv_and_png(tmp_path, capsys):
    output = tmp_path / "run"
    arguments = [
        "gridworld",
        "dyna-maze",
        "--dyna",
        "0",
        "50",
        "--episodes",
        "6",
        "--runs",
        "3",
        "--output",
        str(output),
    ]
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    curves = read_steps_csv(output / "dyna_q_steps.csv")
    assert sorted(curves) == [0, 50] and curves[0].shape == (3, 6)
    np.testing.assert_array_equal(curves[0][:, 0], curves[50][:, 0])  # the shared first episode
    assert f"n =  50: mean steps per episode: first {curves[50][:, 0].mean():.1f}" in printed
    assert "shortest path from the start: 14 steps" in printed
    image = imread(output / "dyna_q_steps.png")
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
    assert image[..., :3].std() > 0.05, "the plot is blank"


def test_curves_round_trip_through_csv_and_malformed_csv_is_rejected(tmp_path):
    curves = {0: np.array([[5, 4, 3], [6, 5, 2]]), 7: np.array([[9, 1, 1], [8, 2, 1]])}
    path = tmp_path / "curves.csv"
    write_steps_csv(path, curves)
    read = read_steps_csv(path)
    assert read.keys() == curves.keys()
    for n, steps in curves.items():
        np.testing.assert_array_equal(read[n], steps)
    plot_steps_per_episode(path, tmp_path / "plot" / "curves.png", shortest_path=1)
    assert (tmp_path / "plot" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    lines = path.read_text().splitlines()
    broken = {
        "header": ["n,run,episode,steps", *lines[1:]],
        "not-integer": [*lines[:2], "0,1,x,3", *lines[3:]],
        "missing-episode": [line for line in lines if line != "0,1,2,5"],
        "duplicate": [*lines, lines[-1]],
        "no-rows": lines[:1],
    }
    messages = {
        "header": "expected the header",
        "not-integer": "line 3: expected 4 integers",
        "missing-episode": "episodes 1..E",
        "duplicate": "a second row",
        "no-rows": "no data rows",
    }
    for name, content in broken.items():
        bad = tmp_path / f"{name}.csv"
        bad.write_text("\n".join(content) + "\n")
        with pytest.raises(ValueError, match=messages[name]):
            read_steps_csv(bad)


def test_the_installed_command_falls_back_to_ascii_arrows():
    command = Path(sys.prefix) / "bin" / "mbrl-ros"
    environment = dict(os.environ, PYTHONIOENCODING="ascii")
    result = subprocess.run([str(command), "gridworld"], capture_output=True, text=True, timeout=120, env=environment)
    assert result.returncode == 0, result.stderr
    assert "greedy policy" in result.stdout and "v<" in result.stdout
