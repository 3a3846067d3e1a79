"""How good a learned dynamics model is on held-out transitions: one-step and multi-step open-loop errors.

Both compare the members' mean prediction with what the robot did, next to the trivial "nothing moves"
baseline (``s' = s``), and are written as CSV (:func:`write_csv`) and drawn as PNG (:func:`plot_one_step`,
:func:`plot_open_loop`).
"""

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mbrl_ros.data.transitions import TransitionBatch
from mbrl_ros.models import DynamicsModel


@dataclass(frozen=True)
class OneStepErrors:
    """Per state dimension, over held-out transitions (state units).

    Attributes:
        labels: (S,) names of the state dimensions.
        rmse: (S,) root-mean-square error of the predicted next state.
        baseline_rmse: (S,) the same for the prediction ``s' = s``.
        transitions: how many transitions were scored.
    """

    labels: tuple[str, ...]
    rmse: np.ndarray
    baseline_rmse: np.ndarray
    transitions: int

    def rows(self) -> list[dict[str, object]]:
        return [{"dimension": k, "label": label, "rmse": self.rmse[k], "baseline_rmse": self.baseline_rmse[k]}
                for k, label in enumerate(self.labels)]


@dataclass(frozen=True)
class OpenLoopErrors:
    """Open-loop rollouts of the recorded actions from recorded states, against the horizon.

    Attributes:
        labels: (S,) names of the state dimensions.
        windows: (H,) rollouts scored at horizon h = 1..H.
        normalized_rmse: (H,) RMSE over all dimensions, each divided by its standard deviation in the data.
        baseline_normalized_rmse: (H,) the same for "nothing moves" (the start state held).
        rmse: (H, S) per dimension (state units).
    """

    labels: tuple[str, ...]
    windows: np.ndarray
    normalized_rmse: np.ndarray
    baseline_normalized_rmse: np.ndarray
    rmse: np.ndarray

    def rows(self) -> list[dict[str, object]]:
        return [{"horizon": h + 1, "windows": int(self.windows[h]), "normalized_rmse": self.normalized_rmse[h],
                 "baseline_normalized_rmse": self.baseline_normalized_rmse[h],
                 **{f"rmse_{label}": self.rmse[h, k] for k, label in enumerate(self.labels)}}
                for h in range(len(self.windows))]


def one_step_errors(model: DynamicsModel, batch: TransitionBatch, labels: Sequence[str]) -> OneStepErrors:
    """Scores the members' mean next-state prediction on ``batch`` (N >= 1 transitions)."""
    predicted = _predict(model, torch.as_tensor(batch.states), torch.as_tensor(batch.actions)).mean(0).numpy()
    return OneStepErrors(
        labels=tuple(labels),
        rmse=np.sqrt(np.mean((predicted - batch.next_states) ** 2, axis=0)),
        baseline_rmse=np.sqrt(np.mean((batch.states - batch.next_states) ** 2, axis=0)),
        transitions=len(batch),
    )


def open_loop_errors(model: DynamicsModel, batch: TransitionBatch, chained: np.ndarray, horizon: int,
                     labels: Sequence[str]) -> OpenLoopErrors:
    """Rolls every member out open loop from each transition's state with the recorded actions.

    Args:
        model: the model.
        batch: N consecutive transitions (time order).
        chained: (N,) whether transition i + 1 continues transition i; a rollout stops at a break.
        horizon: H, the most steps rolled out.
        labels: (S,) names of the state dimensions.

    Returns:
        the errors at h = 1..H; horizons no rollout reaches have 0 windows and NaN errors.
    """
    n = len(batch)
    # remaining[i]: how many transitions follow i without a break, i included
    remaining = np.zeros(n + 1, dtype=int)
    for i in range(n - 1, -1, -1):
        remaining[i] = 1 + (remaining[i + 1] if chained[i] else 0)
    remaining = remaining[:n]
    scale = np.maximum(batch.next_states.std(axis=0), 1e-6)
    windows = np.zeros(horizon, dtype=int)
    squared = np.zeros((horizon, batch.states.shape[1]))
    baseline_squared = np.zeros(horizon)
    if n:
        starts = np.arange(n)
        states = torch.as_tensor(batch.states).expand(model.ensemble_size, n, -1)
        for h in range(horizon):
            valid = remaining > h
            if not valid.any():
                break
            index = np.minimum(starts + h, n - 1)
            actions = torch.as_tensor(batch.actions[index]).expand(model.ensemble_size, n, -1)
            states = _predict(model, states, actions)
            error = (states.mean(0).numpy() - batch.next_states[index])[valid]
            windows[h] = int(valid.sum())
            squared[h] = np.sum(error ** 2, axis=0)
            baseline_error = (batch.states - batch.next_states[index])[valid] / scale
            baseline_squared[h] = np.sum(baseline_error ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        rmse = np.sqrt(squared / windows[:, None])
        normalized = np.sqrt(np.sum(squared / scale ** 2, axis=1) / (windows * len(scale)))
        baseline = np.sqrt(baseline_squared / (windows * len(scale)))
    return OpenLoopErrors(tuple(labels), windows, normalized, baseline, rmse)


def _predict(model: DynamicsModel, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Members' mean next states (E, B, S), on the CPU."""
    model.eval()
    device = model.device
    with torch.no_grad():
        mean, _ = model.predict(states.to(device, torch.float32), actions.to(device, torch.float32))
    return mean.cpu()


def write_csv(rows: list[dict[str, object]], path: str | os.PathLike) -> Path:
    """Writes rows (one mapping each, same keys) as a CSV with a header."""
    path = Path(path)
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_one_step_csv(path: str | os.PathLike) -> OneStepErrors:
    """Reads back what :meth:`OneStepErrors.rows` wrote (for redrawing); ValueError naming what is wrong."""
    from mbrl_ros.runs import read_csv

    columns = read_csv(path, ("rmse", "baseline_rmse"))
    with open(path, newline="") as file:
        labels = tuple(row["label"] or str(k) for k, row in enumerate(csv.DictReader(file)))
    return OneStepErrors(labels, columns["rmse"], columns["baseline_rmse"], transitions=0)


def read_open_loop_csv(path: str | os.PathLike) -> OpenLoopErrors:
    """Reads back what :meth:`OpenLoopErrors.rows` wrote (for redrawing); ValueError naming what is wrong."""
    from mbrl_ros.runs import read_csv

    columns = read_csv(path, ("horizon", "windows", "normalized_rmse", "baseline_normalized_rmse"))
    labels = tuple(name.removeprefix("rmse_") for name in columns if name.startswith("rmse_"))
    rmse = np.stack([columns[f"rmse_{label}"] for label in labels], axis=1) if labels else np.zeros((0, 0))
    return OpenLoopErrors(labels, columns["windows"].astype(int), columns["normalized_rmse"],
                          columns["baseline_normalized_rmse"], rmse)


def plot_one_step(errors: OneStepErrors, path: str | os.PathLike) -> Path:
    """Bars of the one-step RMSE per dimension next to the baseline's (log scale)."""
    from matplotlib import pyplot

    figure, axis = _figure((max(6.0, 0.35 * len(errors.labels) + 2), 4))
    positions = np.arange(len(errors.labels))
    axis.bar(positions - 0.2, errors.baseline_rmse, 0.4, label="s' = s (baseline)", color="tab:gray")
    axis.bar(positions + 0.2, errors.rmse, 0.4, label="model", color="tab:blue")
    axis.set_xticks(positions, errors.labels, rotation=90 if len(errors.labels) > 8 else 0)
    axis.set_yscale("log")
    axis.set_ylabel("one-step RMSE (state units)")
    axis.set_title("held-out one-step error" + (f" ({errors.transitions} transitions)" if errors.transitions else ""))
    axis.legend()
    return _save(figure, pyplot, path)


def plot_open_loop(errors: OpenLoopErrors, path: str | os.PathLike) -> Path:
    """The normalised open-loop RMSE against the horizon, the baseline's next to it."""
    from matplotlib import pyplot

    figure, axis = _figure((7, 4))
    horizons = np.arange(1, len(errors.windows) + 1)
    axis.plot(horizons, errors.baseline_normalized_rmse, "s--", color="tab:gray", label="start state held (baseline)")
    axis.plot(horizons, errors.normalized_rmse, "o-", color="tab:blue", label="model, open loop")
    axis.set_xlabel("horizon (steps)")
    axis.set_ylabel("RMSE / std of each dimension")
    axis.set_title(f"open-loop error ({int(errors.windows[0]) if len(errors.windows) else 0} rollouts)")
    axis.legend()
    return _save(figure, pyplot, path)


def _figure(size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot.subplots(figsize=size)


def _save(figure, pyplot, path: str | os.PathLike) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return Path(path)
