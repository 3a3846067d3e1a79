"""Run directories: CSV logs that survive a crash, and the plots `mbrl-ros plot` draws from them."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mbrl_ros.runs import EPISODE_COLUMNS, PLAN_COLUMNS, TICK_COLUMNS, CsvLog, plot_run, read_csv, trailing_mean


def write_run(run_dir: Path, episodes: int = 5) -> None:
    rng = np.random.default_rng(0)
    logs = {name: CsvLog(run_dir / f"{name}.csv", columns)
            for name, columns in (("episodes", EPISODE_COLUMNS), ("plans", PLAN_COLUMNS), ("ticks", TICK_COLUMNS))}
    for episode in range(1, episodes + 1):
        logs["episodes"].write(
            episode=episode, seed=episode, **{"return": 20.0 * episode}, success=episode > 3, length=200,
            transitions=200 * episode,
            model_version=episode - 1, validation_nll=1.0 / episode, validation_mse=0.5 / episode,
            plan_latency_p50_ms=40.0, plan_latency_p99_ms=80.0, missed_ticks=episode % 2, sim_time_s=4.0 * episode,
            wall_time_s=6.0 * episode,
        )
    for k in range(300):
        logs["plans"].write(time_s=0.1 * k, plan_time_ms=rng.gamma(4, 10), iterations=5, predicted_return=1.0,
                            disagreement=0.1, model_version=1)
        logs["ticks"].write(time_s=0.02 * k, missed=int(k % 97 == 0))
    for log in logs.values():
        log.close()


def test_logs_read_back_as_columns_and_reopening_appends_only_under_the_same_header(tmp_path):
    write_run(tmp_path)
    episodes = read_csv(tmp_path / "episodes.csv")
    assert episodes["return"].tolist() == [20.0, 40.0, 60.0, 80.0, 100.0]
    assert episodes["success"].tolist() == [0, 0, 0, 1, 1]
    log = CsvLog(tmp_path / "ticks.csv", TICK_COLUMNS)
    log.write(time_s=99.0, missed=1)
    log.close()
    ticks = read_csv(tmp_path / "ticks.csv")
    assert len(ticks["time_s"]) == 301 and ticks["time_s"][-1] == 99.0
    with pytest.raises(ValueError, match="episodes.csv has the columns"):
        CsvLog(tmp_path / "episodes.csv", [column for column in EPISODE_COLUMNS if column != "seed"])


def test_a_row_with_missing_or_unknown_columns_is_refused(tmp_path):
    log = CsvLog(tmp_path / "ticks.csv", TICK_COLUMNS)
    with pytest.raises(ValueError, match="expected"):
        log.write(time_s=1.0)
    log.close()


def test_trailing_mean_averages_the_last_window_values_and_skips_nans():
    values = np.array([1.0, 3.0, np.nan, 5.0, 7.0, 9.0])
    np.testing.assert_allclose(trailing_mean(values, 3), [1.0, 2.0, 2.0, 4.0, 6.0, 7.0])
    np.testing.assert_allclose(trailing_mean(values, 1)[[0, 1, 3]], [1.0, 3.0, 5.0])
    assert np.isnan(trailing_mean(values, 1)[2])
    np.testing.assert_allclose(trailing_mean(values, 10), [1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(ValueError, match="window"):
        trailing_mean(values, 0)


def test_plot_run_draws_each_plot_whose_data_exist(tmp_path):
    write_run(tmp_path)
    written = plot_run(tmp_path)
    assert {path.name for path in written} == {"learning_curve.png", "plan_latency.png", "missed_ticks.png"}
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000 for path in written)
    (tmp_path / "ticks.csv").unlink()
    assert "missed_ticks.png" not in {path.name for path in plot_run(tmp_path)}


def test_the_plot_command_reports_a_directory_without_data(tmp_path):
    mbrl_ros = Path(sys.executable).parent / "mbrl-ros"
    result = subprocess.run([str(mbrl_ros), "plot", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "holds no episodes.csv" in result.stdout
    write_run(tmp_path)
    result = subprocess.run([str(mbrl_ros), "plot", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "learning_curve.png" in result.stdout


def test_a_malformed_csv_is_reported_by_file_and_line_not_a_crash(tmp_path, capsys):
    from mbrl_ros import cli

    write_run(tmp_path)
    with open(tmp_path / "plans.csv", "a") as file:
        file.write("12.5,40\n")  # a row cut short, as by a crash mid-write
    assert cli.main(["plot", str(tmp_path)]) == 1
    assert f"{tmp_path / 'plans.csv'}, line 302: 4 value(s) missing" in capsys.readouterr().out
    (tmp_path / "plans.csv").unlink()
    (tmp_path / "episodes.csv").write_text("episode,success\n1,True\n")
    assert cli.main(["plot", str(tmp_path)]) == 1
    assert "no column(s) ['return', 'validation_nll']" in capsys.readouterr().out
