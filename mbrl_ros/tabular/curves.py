"""Dyna-Q learning curves: steps per episode for several n, written to CSV and plotted from it (PNG, Agg).

The CSV is long-form, one row per episode of each run: ``planning_steps,run,episode,steps`` (episode from 1).
"""

import csv
from collections.abc import Mapping
from pathlib import Path

import numpy as np

CSV_HEADER = ("planning_steps", "run", "episode", "steps")


def write_steps_csv(path: Path, curves: Mapping[int, np.ndarray]) -> None:
    """Writes ``curves`` (n -> (runs, episodes) steps per episode) to ``path``, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_HEADER)
        for n, steps in curves.items():
            for run, run_steps in enumerate(np.asarray(steps)):
                writer.writerows((n, run, episode, int(count)) for episode, count in enumerate(run_steps, start=1))


def read_steps_csv(path: Path) -> dict[int, np.ndarray]:
    """Reads a file written by :func:`write_steps_csv` back into n -> (runs, episodes) int.

    Raises:
        ValueError: naming the line, if the header, a value or the set of runs and episodes is malformed.
    """
    rows: dict[int, dict[int, dict[int, int]]] = {}
    with Path(path).open(newline="") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        if header is None or tuple(header) != CSV_HEADER:
            raise ValueError(f"{path}: expected the header {','.join(CSV_HEADER)}, got {header}")
        for line, row in enumerate(reader, start=2):
            try:
                n, run, episode, steps = (int(value) for value in row)
            except ValueError:
                raise ValueError(f"{path}, line {line}: expected 4 integers, got {row}") from None
            if n < 0 or run < 0 or episode < 1 or steps < 1:
                raise ValueError(f"{path}, line {line}: values out of range: {row}")
            run_steps = rows.setdefault(n, {}).setdefault(run, {})
            if episode in run_steps:
                raise ValueError(f"{path}, line {line}: a second row for n={n}, run {run}, episode {episode}")
            run_steps[episode] = steps
    if not rows:
        raise ValueError(f"{path}: no data rows")
    curves = {}
    for n, runs in rows.items():
        episodes = len(next(iter(runs.values())))
        if sorted(runs) != list(range(len(runs))) or any(
            sorted(run_steps) != list(range(1, episodes + 1)) for run_steps in runs.values()
        ):
            raise ValueError(f"{path}: n={n} needs runs 0..R-1, each with episodes 1..E")
        curves[n] = np.array([[runs[run][episode] for episode in range(1, episodes + 1)] for run in range(len(runs))])
    return curves


def plot_steps_per_episode(csv_path: Path, png_path: Path, shortest_path: int | None = None, title: str = "") -> None:
    """Plots the mean steps per episode over runs of each n from a curves CSV (the book's Figure 8.2).

    Args:
        csv_path: a file written by :func:`write_steps_csv`.
        png_path: where the PNG goes (its folder is created).
        shortest_path: if given, drawn as a dashed line: the fewest steps an episode can take.
        title: figure title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curves = read_steps_csv(csv_path)
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for n, steps in sorted(curves.items()):
        episodes = np.arange(1, steps.shape[1] + 1)
        axes.plot(episodes, steps.mean(axis=0), label=f"n = {n}" + (" (Q-learning)" if n == 0 else ""))
    if shortest_path is not None:
        axes.axhline(shortest_path, color="grey", linestyle="--", linewidth=1, label=f"shortest path ({shortest_path})")
    runs = sorted({steps.shape[0] for steps in curves.values()})
    axes.set(
        xlabel="episode",
        ylabel=f"steps per episode (mean of {'/'.join(map(str, runs))} runs)",
        yscale="log",
        title=title or "Dyna-Q: steps per episode for n planning steps per real step",
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png_path, dpi=120)
