"""A run's directory: what the embedded runner writes as it goes, and the plots drawn from it.

Files (CSV with a header row; written line by line and flushed, so a crashed run keeps what it had):

- ``episodes.csv``: one row per episode (:data:`EPISODE_COLUMNS`);
- ``plans.csv``: one row per plan the controller made (:data:`PLAN_COLUMNS`);
- ``ticks.csv``: one row per control tick in realtime mode (:data:`TICK_COLUMNS`);
- the learner's ``training.csv`` lives in the learner's data directory, ``learner/``.

:func:`plot_run` draws ``learning_curve.png``, ``plan_latency.png`` and ``missed_ticks.png`` from them, and
``training.png`` next to every learner's ``training.csv`` (``mbrl-ros plot RUN_DIR``). Given the output of
``mbrl-ros train`` it redraws its training curves and its report (``report/*.png``).
"""

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np

EPISODE_COLUMNS = (
    "episode", "seed", "return", "success", "length", "transitions", "model_version", "validation_nll",
    "validation_mse", "plan_latency_p50_ms", "plan_latency_p99_ms", "missed_ticks", "sim_time_s", "wall_time_s",
)
PLAN_COLUMNS = ("time_s", "plan_time_ms", "iterations", "predicted_return", "disagreement", "model_version")
TICK_COLUMNS = ("time_s", "missed")
RUN_LOGS = {"episodes": EPISODE_COLUMNS, "plans": PLAN_COLUMNS, "ticks": TICK_COLUMNS}  # <name>.csv: its header


class CsvLog:
    """Appends rows to a CSV file, flushing each one; reopening an existing file appends to it.

    Args:
        path: the file.
        columns: the header; every row gives a value for each.

    Raises:
        ValueError: the existing file has another header (e.g. written by an older version): appending would
            misalign its columns.
    """

    def __init__(self, path: str | os.PathLike, columns: Sequence[str]):
        self.path, self.columns = Path(path), tuple(columns)
        is_new = not self.path.exists() or self.path.stat().st_size == 0
        if not is_new:
            with open(self.path, newline="") as existing:
                header = tuple(next(csv.reader(existing), ()))
            if header != self.columns:
                raise ValueError(f"{self.path} has the columns {list(header)}, not {list(self.columns)}: "
                                 "give a new run directory")
        self._file: IO[str] = open(self.path, "a", newline="")  # closed by close()
        self._writer = csv.DictWriter(self._file, fieldnames=self.columns)
        if is_new:
            self._writer.writeheader()
            self._file.flush()

    def write(self, **row: object) -> None:
        if set(row) != set(self.columns):
            raise ValueError(f"{self.path.name}: row has {sorted(row)}, expected {sorted(self.columns)}")
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_csv(path: str | os.PathLike, required: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Columns of a CSV written by :class:`CsvLog` as float arrays (empty ones if the file has no rows).

    Raises:
        ValueError: a column of ``required`` is missing, or a row is cut short (naming the file and the line).
    """
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
        columns = reader.fieldnames or []
    missing = [column for column in required if column not in columns]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing}; its header is {list(columns)}")
    for line, row in enumerate(rows, start=2):
        if None in row.values():
            raise ValueError(f"{path}, line {line}: {sum(v is None for v in row.values())} value(s) missing")
    return {column: np.array([_number(row[column]) for row in rows], dtype=float) for column in columns}


def _number(text: str) -> float:
    if text in ("True", "False"):
        return float(text == "True")
    try:
        return float(text)
    except ValueError:
        return float("nan")


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """(N,) -> (N,): the mean of each value and the ``window - 1`` before it (of all before it near the start);
    NaNs (an episode without that figure) are left out of the means."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    values = np.asarray(values, dtype=float)
    present = ~np.isnan(values)
    sums = np.cumsum(np.where(present, values, 0.0))
    counts = np.cumsum(present)
    sums[window:] = sums[window:] - sums[:-window]
    counts[window:] = counts[window:] - counts[:-window]
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def plot_run(run_dir: str | os.PathLike) -> list[Path]:
    """Draws the run's plots next to its CSVs; returns the PNGs written (those whose data exist).

    Raises:
        ValueError: a CSV that cannot be read (the text names the file and what is wrong).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    run_dir = Path(run_dir)
    written = []
    if (run_dir / "episodes.csv").is_file():
        episodes = read_csv(run_dir / "episodes.csv", ("episode", "return", "success", "validation_nll"))
        figure, (returns_axis, model_axis) = pyplot.subplots(2, 1, figsize=(7, 6), sharex=True,
                                                             gridspec_kw={"height_ratios": [2, 1]})
        # Single episodes vary with their start and goal far more than between models: the trailing means show
        # the trend (a window of a tenth of the run, 5 to 75 episodes).
        window = max(5, min(75, len(episodes["episode"]) // 10))
        returns_axis.plot(episodes["episode"], episodes["return"], ".", color="tab:blue", alpha=0.4, label="return")
        returns_axis.plot(episodes["episode"], trailing_mean(episodes["return"], window), "-", color="tab:blue",
                          linewidth=2, label=f"return, mean of the last {window}")
        returns_axis.set_ylabel("return")
        # The model each episode was planned with: its held-out error falls as the robot learns its dynamics
        # (runs written before the MSE was logged show the NLL).
        quality = "validation_mse" if "validation_mse" in episodes else "validation_nll"
        model_axis.plot(episodes["episode"], episodes[quality], ".-", color="tab:purple")
        if quality == "validation_mse" and np.nanmin(episodes[quality], initial=np.inf) > 0:
            model_axis.set_yscale("log")
        model_axis.set_xlabel("episode")
        model_axis.set_ylabel("model validation MSE" if quality == "validation_mse" else "model validation NLL")
        success_axis = returns_axis.twinx()
        success_axis.plot(episodes["episode"], trailing_mean(episodes["success"], window), "-", color="tab:green",
                          linewidth=2, label=f"success rate, last {window}")
        success_axis.set_ylabel("success rate")
        success_axis.set_ylim(-0.05, 1.05)
        returns_axis.set_title(f"learning curve ({run_dir.name})", pad=22)
        returns_axis.legend(*_handles(returns_axis, success_axis), loc="lower center", bbox_to_anchor=(0.5, 1.0),
                            ncols=3, fontsize="small", frameon=False)
        written.append(_save(figure, run_dir / "learning_curve.png"))
    if (run_dir / "plans.csv").is_file():
        plans = read_csv(run_dir / "plans.csv", ("plan_time_ms",))
        figure, axis = pyplot.subplots(figsize=(7, 4))
        latencies = plans["plan_time_ms"]
        axis.hist(latencies, bins=50)
        if len(latencies):
            for q, style in ((50, "-"), (99, "--")):
                axis.axvline(np.percentile(latencies, q), color="k", linestyle=style, label=f"p{q}")
            axis.legend()
        axis.set_xlabel("plan time (ms)")
        axis.set_ylabel("plans")
        axis.set_title(f"plan latency ({len(latencies)} plans)")
        written.append(_save(figure, run_dir / "plan_latency.png"))
    if (run_dir / "ticks.csv").is_file():
        ticks = read_csv(run_dir / "ticks.csv", ("time_s", "missed"))
        figure, axis = pyplot.subplots(figsize=(7, 3))
        axis.plot(ticks["time_s"], np.cumsum(ticks["missed"]), drawstyle="steps-post")
        axis.set_xlabel("time (s)")
        axis.set_ylabel("missed ticks (cumulative)")
        axis.set_title(f"missed ticks: {int(ticks['missed'].sum())} of {len(ticks['missed'])}")
        written.append(_save(figure, run_dir / "missed_ticks.png"))
    return written + _plot_learning(run_dir)


def _plot_learning(run_dir: Path) -> list[Path]:
    """The training curves of the run's learner (or of ``mbrl-ros train``'s output) and an offline report."""
    from mbrl_ros.models import plot_training_curves
    from mbrl_ros.offline.evaluation import plot_one_step, plot_open_loop, read_one_step_csv, read_open_loop_csv

    written = []
    for directory in (run_dir, run_dir / "learner"):
        if (directory / "training.csv").is_file():
            try:
                written.append(plot_training_curves(directory / "training.csv", directory / "training.png"))
            except (KeyError, ValueError) as error:
                raise ValueError(f"{directory / 'training.csv'}: cannot be plotted ({error})") from error
    report = run_dir / "report"
    if (report / "one_step_error.csv").is_file():
        written.append(plot_one_step(read_one_step_csv(report / "one_step_error.csv"), report / "one_step_error.png"))
    if (report / "open_loop_error.csv").is_file():
        written.append(plot_open_loop(read_open_loop_csv(report / "open_loop_error.csv"),
                                      report / "open_loop_error.png"))
    return written


def _handles(*axes) -> tuple[list, list]:
    """The legend handles and labels of all ``axes`` (a twin axis keeps its own)."""
    pairs = [axis.get_legend_handles_labels() for axis in axes]
    return [h for handles, _ in pairs for h in handles], [label for _, labels in pairs for label in labels]


def _save(figure, path: Path) -> Path:
    from matplotlib import pyplot

    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path
