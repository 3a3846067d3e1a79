"""``mbrl-ros train --bag PATH --config CONFIG``: a dynamics model trained from a recorded bag, with a report.

The output directory is a dynamics learner's data directory: ``transitions/`` (the bag's training
transitions, a replay buffer), ``models/v000001/`` (the model, :class:`~mbrl_ros.learning.ModelStore`),
``training.csv`` / ``training.png`` (the learning curves). A learner started with ``data_dir`` there continues
from it; a controller started with ``model_dir`` there plans with the model at once. The evaluation lives in
``report/``: ``one_step_error.csv`` / ``.png`` (held-out one-step error per state dimension),
``open_loop_error.csv`` / ``.png`` (multi-step open-loop error against the horizon) and ``summary.json``.
"""

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mbrl_ros.learning import Learner, RetrainPolicy
from mbrl_ros.models import plot_training_curves
from mbrl_ros.offline.bag_transitions import BagTransitions, OfflineDataError, transitions_from_bag
from mbrl_ros.offline.config import LearnerSettings
from mbrl_ros.offline.evaluation import (
    OneStepErrors,
    OpenLoopErrors,
    one_step_errors,
    open_loop_errors,
    plot_one_step,
    plot_open_loop,
    write_csv,
)

DEFAULT_HORIZON = 20  # steps of the open-loop evaluation when the file gives no planning horizon
MIN_TRANSITIONS = 10  # fewer cannot be split into training and validation sets


@dataclass(frozen=True)
class OfflineResult:
    """What :func:`train_from_bag` did.

    Attributes:
        output: the learner data directory written.
        model_dir: the model's directory (``output/models/v000001``).
        data: the bag's transitions and how they were read.
        train_transitions: transitions the learner was given (its replay buffer).
        holdout_transitions: transitions kept out of training for the report.
        validation_nll: the trainer's best validation NLL (members' mean, nats per dimension).
        one_step: held-out one-step errors (None without held-out transitions).
        open_loop: held-out open-loop errors (None without held-out transitions).
    """

    output: Path
    model_dir: Path
    data: BagTransitions
    train_transitions: int
    holdout_transitions: int
    validation_nll: float
    one_step: OneStepErrors | None
    open_loop: OpenLoopErrors | None


def holdout_mask(data: BagTransitions, fraction: float) -> np.ndarray:
    """(N,) True for the last ``fraction`` of each robot's transitions (whole stretches of time, for rollouts)."""
    if not 0 <= fraction < 1:
        raise ValueError(f"the held-out fraction must be in [0, 1), got {fraction}")
    mask = np.zeros(len(data), dtype=bool)
    for robot in np.unique(data.robot):
        rows = np.flatnonzero(data.robot == robot)
        count = math.ceil(fraction * len(rows))
        if count:
            mask[rows[-count:]] = True
    return mask


def train_from_bag(bag: str | os.PathLike, settings: LearnerSettings, output: str | os.PathLike,
                   holdout: float = 0.2, horizon: int | None = None, progress: bool = True,
                   start: float = -math.inf, end: float = math.inf) -> OfflineResult:
    """Builds the bag's transitions as the live learner does, trains the configured model, writes the report.

    Args:
        bag: the bag directory.
        settings: the learner's settings (:func:`~mbrl_ros.offline.learner_settings`).
        output: the learner data directory to create (must not exist or be empty).
        holdout: share of each robot's transitions, the latest ones, kept out of training for the report.
        horizon: steps of the open-loop evaluation (default: the controller's planning horizon, else 20).
        progress: progress bars while reading and training.
        start: use only transitions from states measured at or after this time (s, the robot's stamps).
        end: use only transitions to states measured at or before this time (s, the robot's stamps).

    Raises:
        OfflineDataError: the bag cannot give enough transitions (see :func:`transitions_from_bag`).
        ValueError: an output directory that is not empty, a bad ``holdout`` or ``horizon``.
    """
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ValueError(f"{output} exists and is not an empty directory; choose a new output directory")
    horizon = horizon or settings.planning_horizon or DEFAULT_HORIZON
    if horizon < 1:
        raise ValueError(f"the open-loop horizon must be at least 1 step, got {horizon}")
    data = transitions_from_bag(bag, settings, progress).within(start, end)
    held_out = holdout_mask(data, holdout)
    train = data.batch[~held_out]
    if len(train) < MIN_TRANSITIONS:
        raise OfflineDataError(f"{bag}: only {len(train)} transitions to train on ({len(data)} in the bag, "
                               f"{int(held_out.sum())} held out); training needs at least {MIN_TRANSITIONS}")
    learner = Learner(output, settings.model_factory(), dataclasses.replace(settings.trainer, progress=progress),
                      RetrainPolicy(every_transitions=0, on_episode_end=False, min_transitions=MIN_TRANSITIONS),
                      learnable=settings.task.learnable)
    try:
        learner.add(train.states, train.actions, train.next_states, train.rewards, train.dones)
        release = learner.train_now()
    finally:
        learner.close()
    plot_training_curves(output / "training.csv", output / "training.png")
    model = learner.model.cpu()
    one_step = open_loop = None
    report = output / "report"
    report.mkdir()
    labels = settings.task.layout.labels
    if held_out.any():
        test = data.batch[held_out]
        one_step = one_step_errors(model, test, labels)
        open_loop = open_loop_errors(model, test, data.chained()[held_out], horizon, labels)
        write_csv(one_step.rows(), report / "one_step_error.csv")
        plot_one_step(one_step, report / "one_step_error.png")
        write_csv(open_loop.rows(), report / "open_loop_error.csv")
        plot_open_loop(open_loop, report / "open_loop_error.png")
    result = OfflineResult(output, learner.store.path(release.version), data, len(train), int(held_out.sum()),
                           release.validation_nll, one_step, open_loop)
    (report / "summary.json").write_text(json.dumps(_summary(bag, settings, result), indent=1) + "\n")
    return result


def _summary(bag: str | os.PathLike, settings: LearnerSettings, result: OfflineResult) -> dict:
    summary = {
        "bag": str(bag), "task": settings.task.name, "model_dir": str(result.model_dir),
        "model_kind": settings.model.get("kind", "ensemble"), "transitions": len(result.data),
        "train_transitions": result.train_transitions, "holdout_transitions": result.holdout_transitions,
        "validation_nll": result.validation_nll,
        "topics": {topic: vars(report) for topic, report in result.data.topics.items()},
        "assembler": {namespace or "(root)": vars(stats) for namespace, stats in result.data.assembler.items()},
    }
    if result.one_step is not None:
        summary["one_step_rmse"] = dict(zip(result.one_step.labels, result.one_step.rmse.tolist(), strict=True))
        summary["open_loop_normalized_rmse"] = [None if np.isnan(v) else v
                                                for v in result.open_loop.normalized_rmse.tolist()]
    return summary
