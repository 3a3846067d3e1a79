"""Training of learned dynamics models: mini-batch Adam, bootstrap, early stopping, elites, warm starts.

A :class:`ModelTrainer` owns one model and its optimizer. Each :meth:`ModelTrainer.fit` call trains on all
the data given (a round); calling it again when new transitions have arrived continues from the current
weights and optimizer state instead of starting over: the normalisers are refitted on all the data and the
network re-expressed for them, so that the refit leaves the model's function unchanged
(:meth:`~mbrl_ros.models.base.LearnedDynamicsModel.refit_normalizers`), then a short round with a cosine-annealed
learning rate (``TrainerConfig.warm_epochs``) takes in the new data. The first round trains until the
validation score stops improving (early stopping); in every round each member keeps its best weights.

Every epoch is logged to a CSV (one row per epoch, all rounds in one file) that
:func:`plot_training_curves` draws.
"""

import csv
import ctypes
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from mbrl_ros.data.replay_buffer import ReplayBuffer
from mbrl_ros.data.transitions import TransitionBatch
from mbrl_ros.models.base import LearnedDynamicsModel

CSV_COLUMNS = ("round", "epoch", "train_transitions", "validation_transitions", "train_loss", "validation_nll",
               "validation_mse", "best_validation_nll", "learning_rate", "elapsed_s")  # EpochReport's fields
_EVALUATION_ROWS = 8192  # validation rows per forward pass (bounds memory)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h


@dataclass
class TrainerConfig:
    """Hyper-parameters of :class:`ModelTrainer`.

    Attributes:
        batch_size: transitions per member per step.
        learning_rate: Adam's step size.
        weight_decay: L2 coefficient, one for all layers or one per layer (hidden layers, then output; PETS
            uses growing values, e.g. [2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4]).
        max_epochs: the most epochs of a round's early-stopped phase.
        patience: epochs without the ensemble improving before the round stops.
        min_improvement: decrease of the members' mean best validation score (nats per dimension) that counts as
            the ensemble improving. Each member keeps its own best weights whatever the decrease.
        validation_fraction: share of the transitions held out (ReplayBuffer.split) by :meth:`fit_buffer`.
        validation_score: what early stopping, each member's best weights and the elites go by: ``"mse"``, the
            held-out error of the predicted mean, as PETS's reference code and mbrl-lib do (scored in nats as
            ``0.5 log MSE``, the NLL of a Gaussian whose variance is that error, so that ``min_improvement`` and
            ``warm_tolerance`` read alike for both); or ``"nll"``, the held-out Gaussian NLL. On a near-
            deterministic simulator the NLL rewards a collapsing variance, and one held-out transition no model
            predicts (a cart hitting its end stop) then makes every update look worse than none.
        bootstrap: each member trains on its own resample (with replacement) of the training set.
        num_elites: members kept as elites after each round (best validation score); None: all of them.
        warm_epochs: epochs of the annealed phase that ends every round, and is all of a warm round (one that
            continues a trained model, see ``warm_tolerance``): the learning rate follows a cosine from
            ``learning_rate`` to ``learning_rate * warm_final_lr_fraction``. A few annealed epochs give a better
            model than many at a constant rate, in a fraction of the time. None: no annealing, every round is
            early-stopped at a constant rate.
        warm_final_lr_fraction: where the warm rounds' cosine ends, as a fraction of ``learning_rate``.
        warm_tolerance: how much worse (nats per dimension) the validation score may be at the start of a round
            than at the end of the previous one for the round to be warm: data from a new region of the state
            space (a worse NLL) gets a full round.
        time_limit: seconds after which a round stops at the end of its epoch; None: no limit.
        seed: seeds the bootstrap, the batch order and the split.
        device: torch device to train on, e.g. "cpu" or "cuda".
        progress: show a progress bar.
        keep_freed_memory: on the CPU under glibc, keep freed memory in the heap instead of returning it to
            the system (mallopt; for the whole process, from the first trainer on). Training allocates and frees
            megabyte-sized tensors every step; returned memory comes back as page faults, ~10% of a step.
    """

    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float | list[float] = 5e-5
    max_epochs: int = 200
    patience: int = 5
    min_improvement: float = 0.01
    validation_fraction: float = 0.1
    validation_score: str = "mse"
    bootstrap: bool = True
    num_elites: int | None = None
    warm_epochs: int | None = 5
    warm_final_lr_fraction: float = 0.1
    warm_tolerance: float = 0.25
    time_limit: float | None = None
    seed: int = 0
    device: str = "cpu"
    progress: bool = True
    keep_freed_memory: bool = True


@dataclass(frozen=True)
class EpochReport:
    """One epoch, as logged and as given to ``on_epoch`` callbacks.

    Attributes:
        round: the round (0 for the first :meth:`ModelTrainer.fit`).
        epoch: 1, 2, ... within the round.
        train_transitions: transitions trained on.
        validation_transitions: transitions scoring the epoch.
        train_loss: mean training loss of the epoch.
        validation_nll: members' mean validation NLL (nats per dimension, normalised units) after the epoch.
        validation_mse: members' mean validation MSE (normalised units).
        best_validation_nll: mean over members of each member's best validation NLL so far in the round.
        learning_rate: Adam's step size.
        elapsed: seconds since the round started.
    """

    round: int
    epoch: int
    train_transitions: int
    validation_transitions: int
    train_loss: float
    validation_nll: float
    validation_mse: float
    best_validation_nll: float
    learning_rate: float
    elapsed: float


@dataclass
class TrainingResult:
    """What one round of training did.

    Attributes:
        round: 0 for the first :meth:`ModelTrainer.fit`, then 1, 2, ...
        epochs: epochs run, all phases.
        stopped_early: the early-stopped phase ended because the ensemble did not improve for ``patience`` epochs.
        best_validation_nll: (E,) per member, the validation NLL of the weights kept, nats per dimension, in the
            normalised units of this round.
        best_validation_mse: (E,) per member, the validation MSE of the weights kept, normalised units.
        best_validation_score: (E,) per member, the ``validation_score`` of the weights kept (nats).
        elites: the elite members.
        train_transitions: transitions trained on.
        validation_transitions: transitions held out (0 when training data scored the epochs).
        left_out_transitions: transitions of the buffer that :meth:`ModelTrainer.fit_buffer`'s ``keep`` left out.
        wall_time: seconds the round took.
        warm: the round was a warm one (annealed epochs only).
    """

    round: int
    epochs: int
    stopped_early: bool
    best_validation_nll: list[float] = field(default_factory=list)
    best_validation_mse: list[float] = field(default_factory=list)
    best_validation_score: list[float] = field(default_factory=list)
    elites: list[int] = field(default_factory=list)
    train_transitions: int = 0
    validation_transitions: int = 0
    wall_time: float = 0.0
    warm: bool = False
    left_out_transitions: int = 0


@dataclass
class _Round:
    """The state of one round of :meth:`ModelTrainer.fit` across its phases."""

    index: int
    start: float  # time.perf_counter() when the round began
    train_transitions: int
    best: Tensor  # (E,) each member's best validation score in the round (nats)
    best_nll: Tensor  # (E,) the validation NLL of each member's best weights
    best_mse: Tensor  # (E,) their validation MSE
    snapshot: dict[str, Tensor]  # each member's best weights
    pairs: Tensor  # (N, I + S) normalised inputs and targets
    validation: tuple[Tensor, Tensor]  # normalised validation inputs (V, I) and targets (V, S)
    rows: Tensor = field(default_factory=lambda: torch.empty(0))  # (E, N) the rows each member trains on
    epoch: int = 0
    stopped_early: bool = False


class ModelTrainer:
    """Trains one :class:`~mbrl_ros.models.base.LearnedDynamicsModel`, round after round.

    Args:
        model: the model to train (moved to ``config.device``).
        config: hyper-parameters.
        csv_path: where to append one row per epoch (:data:`CSV_COLUMNS`); None: no log.

    Raises:
        ValueError: a CUDA device was asked for and there is none.
    """

    def __init__(self, model: LearnedDynamicsModel, config: TrainerConfig | None = None,
                 csv_path: str | os.PathLike | None = None):
        self.config = config or TrainerConfig()
        self.device = torch.device(self.config.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {self.config.device!r} was asked for, but CUDA is not available")
        if self.config.batch_size < 1 or self.config.max_epochs < 0 or self.config.patience < 1:
            raise ValueError("batch_size and patience must be positive and max_epochs non-negative")
        if self.config.validation_score not in ("mse", "nll"):
            raise ValueError(f"validation_score must be 'mse' or 'nll', got {self.config.validation_score!r}")
        if self.config.warm_epochs is not None and self.config.warm_epochs < 1:
            raise ValueError(f"warm_epochs must be positive or None, got {self.config.warm_epochs}")
        self.model = model.to(self.device)
        self.csv_path = Path(csv_path) if csv_path is not None else None
        self.optimizer = torch.optim.Adam(
            model.weight_decay_parameter_groups(self.config.weight_decay), lr=self.config.learning_rate,
            fused=self.device.type in ("cpu", "cuda"),
        )
        self.rounds = 0
        self._previous_raw_score: float | None = None  # the last round's members' mean best score, raw units
        if self.device.type == "cpu" and self.config.keep_freed_memory:
            keep_freed_memory_in_heap()

    def fit_buffer(self, buffer: ReplayBuffer, on_epoch: Callable[[EpochReport], bool] | None = None,
                   keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> TrainingResult:
        """One round on ``buffer``, split with ``config.validation_fraction`` and ``config.seed``.

        Args:
            buffer: the transitions.
            on_epoch: as in :meth:`fit`.
            keep: ``keep(states (N, S), next_states (N, S)) -> (N,) bool``, the transitions to train and validate
                on (e.g. a task's :meth:`~mbrl_ros.tasks.Task.learnable`); the others stay in the buffer, counted
                in the result's ``left_out_transitions``. Applied after the split, so it moves no transition
                between training and validation.
        """
        train, validation = buffer.split(self.config.validation_fraction, self.config.seed)
        left_out = 0
        if keep is not None:
            whole = len(train) + len(validation)
            train, validation = (batch[_kept(keep, batch)] for batch in (train, validation))
            left_out = whole - len(train) - len(validation)
        return replace(self.fit(train, validation, on_epoch), left_out_transitions=left_out)

    def fit(self, train: TransitionBatch, validation: TransitionBatch | None = None,
            on_epoch: Callable[[EpochReport], bool] | None = None) -> TrainingResult:
        """One round of training; continues from the current weights if the model was trained before.

        A round is an early-stopped phase at a constant learning rate, then ``warm_epochs`` at a cosine-annealed
        one. A warm round (the model was trained before, and the new data does not surprise it by more than
        ``warm_tolerance``) is the annealed phase alone.

        Args:
            train: transitions to train on (at least one).
            validation: held-out transitions scoring each epoch; if None or empty, training data scores them.
            on_epoch: called after every epoch (the model holds that epoch's weights); returning True ends the
                round there, e.g. to stop on request.

        Returns:
            what the round did; the model holds each member's best weights of the round, in eval mode.
        """
        if len(train) == 0:
            raise ValueError("cannot train on no transitions")
        config, model = self.config, self.model
        start = time.perf_counter()
        continuing = model.input_normalizer.fitted
        inputs, targets = self._tensors(train)
        model.refit_normalizers(inputs, targets, preserve_function=continuing)
        inputs, targets = model.input_normalizer.normalize(inputs), model.target_normalizer.normalize(targets)
        if validation is not None and len(validation) > 0:
            validation_inputs, validation_targets = self._tensors(validation)
            validation_inputs = model.input_normalizer.normalize(validation_inputs)
            validation_targets = model.target_normalizer.normalize(validation_targets)
        else:  # training data scores the epochs, as in mbrl-lib
            validation_inputs, validation_targets = inputs[:_EVALUATION_ROWS], targets[:_EVALUATION_ROWS]
        best_nll, best_mse = self._evaluate(validation_inputs, validation_targets)
        best = self._score(best_nll, best_mse)
        surprise = self._raw_score(best) - self._previous_raw_score if self._previous_raw_score is not None else 0.0
        warm = continuing and config.warm_epochs is not None and surprise <= config.warm_tolerance
        state = _Round(index=self.rounds, start=start, train_transitions=len(train), best=best, best_nll=best_nll,
                       best_mse=best_mse,
                       snapshot={name: value.clone() for name, value in model.state_dict().items()},
                       pairs=torch.cat([inputs, targets], dim=-1), validation=(validation_inputs, validation_targets))
        self.rounds += 1
        generator = torch.Generator(self.device).manual_seed(config.seed * 1_000_003 + state.index)
        count, members = inputs.shape[0], model.ensemble_size
        if config.bootstrap and members > 1:
            state.rows = torch.randint(count, (members, count), generator=generator, device=self.device)
        else:
            state.rows = torch.arange(count, device=self.device).expand(members, count)
        phases = ([] if warm else [(config.max_epochs, False)]) + ([(config.warm_epochs, True)]
                                                                  if config.warm_epochs is not None else [])
        progress = tqdm(total=sum(epochs for epochs, _ in phases), unit="epoch", leave=False,
                        desc=f"training {model.kind} (round {state.index}{', warm' if warm else ''})",
                        disable=not config.progress)
        with progress:
            for epochs, annealed in phases:
                stopped = self._run_phase(state, epochs, annealed, generator, progress, on_epoch)
                model.load_state_dict(state.snapshot)  # each member's best weights, to anneal from or to keep
                if stopped:
                    break
        elites = torch.argsort(state.best)[: config.num_elites or members].sort().values.tolist()
        if hasattr(model, "set_elites"):
            model.set_elites(elites)
        model.eval()
        self._previous_raw_score = self._raw_score(state.best)
        return TrainingResult(state.index, state.epoch, state.stopped_early, state.best_nll.tolist(),
                              state.best_mse.tolist(), state.best.tolist(), elites, len(train),
                              0 if validation is None else len(validation),
                              time.perf_counter() - start, warm)

    def _run_phase(self, state: "_Round", epochs: int, annealed: bool, generator: torch.Generator,
                   progress: tqdm, on_epoch: Callable[[EpochReport], bool] | None) -> bool:
        """Up to ``epochs`` epochs; early stopping unless ``annealed``. Returns whether the round must end now."""
        config, model = self.config, self.model
        reference = state.best.mean().item()  # the members' mean best score when the ensemble last improved enough
        epochs_since_improvement = 0
        for phase_epoch in range(1, epochs + 1):
            for group in self.optimizer.param_groups:
                group["lr"] = self._learning_rate(phase_epoch, epochs if annealed else None)
            model.train()
            order = torch.randperm(state.rows.shape[1], generator=generator, device=self.device)
            train_loss = self._train_epoch(state.pairs, state.rows[:, order])
            nll, mse = self._evaluate(*state.validation)
            score = self._score(nll, mse)
            improved = score < state.best  # every member keeps its best weights...
            if improved.any():
                self._keep_improved(state.snapshot, improved)
                state.best = torch.where(improved, score, state.best)
                state.best_nll = torch.where(improved, nll, state.best_nll)
                state.best_mse = torch.where(improved, mse, state.best_mse)
            if state.best.mean().item() < reference - config.min_improvement:  # ...the ensemble decides when to stop
                reference = state.best.mean().item()
                epochs_since_improvement = 0
            else:
                epochs_since_improvement += 1
            state.epoch += 1
            report = EpochReport(state.index, state.epoch, state.train_transitions, state.validation[0].shape[0],
                                 train_loss, nll.mean().item(), mse.mean().item(), state.best_nll.mean().item(),
                                 self.optimizer.param_groups[0]["lr"], time.perf_counter() - state.start)
            self._log(report)
            progress.update()
            progress.set_postfix(train=f"{train_loss:.4g}", val_nll=f"{report.validation_nll:.4g}")
            if on_epoch is not None and on_epoch(report):
                return True
            if config.time_limit is not None and report.elapsed > config.time_limit:
                return True
            if not annealed and epochs_since_improvement >= config.patience:
                state.stopped_early = True
                return False
        return False

    def _score(self, nll: Tensor, mse: Tensor) -> Tensor:
        """Per-member validation NLL and MSE (E,) -> the ``validation_score`` (E,), nats per dimension."""
        return nll if self.config.validation_score == "nll" else 0.5 * mse.clamp_min(1e-30).log()

    def _raw_score(self, score: Tensor) -> float:
        """Members' mean score (E,) in normalised units -> the same in raw units (comparable across rounds)."""
        return score.mean().item() + torch.log(self.model.target_normalizer.std).mean().item()

    def _learning_rate(self, epoch: int, annealed_epochs: int | None) -> float:
        """Adam's step size for ``epoch`` (1, 2, ...): constant, or cosine-annealed over ``annealed_epochs``."""
        if annealed_epochs is None:
            return self.config.learning_rate
        final = self.config.warm_final_lr_fraction
        progress = (epoch - 1) / max(annealed_epochs - 1, 1)
        return self.config.learning_rate * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress)))

    def _tensors(self, batch: TransitionBatch) -> tuple[Tensor, Tensor]:
        """Raw model inputs (N, I) (the model's raw_inputs) and targets (N, S) (its state_change) on the device."""
        states = torch.as_tensor(batch.states, device=self.device)
        inputs = self.model.raw_inputs(states, torch.as_tensor(batch.actions, device=self.device))
        return inputs, self.model.state_change(states, torch.as_tensor(batch.next_states, device=self.device))

    def _train_epoch(self, pairs: Tensor, rows: Tensor) -> float:
        """One pass over ``rows`` (E, N) (each member its own order), mini-batch by mini-batch; mean loss.

        Args:
            pairs: (N, I + S) normalised inputs and targets side by side.
            rows: (E, N) the rows of ``pairs`` each member visits, in order.
        """
        total = torch.zeros((), device=self.device)
        batches, members, input_width = 0, rows.shape[0], pairs.shape[-1] - self.model.state_dim  # inputs, targets
        for first in range(0, rows.shape[1], self.config.batch_size):
            batch_rows = rows[:, first: first + self.config.batch_size].flatten()
            batch = pairs.index_select(0, batch_rows).view(members, -1, pairs.shape[1])
            loss = self.model.training_loss(batch[..., :input_width], batch[..., input_width:])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach()
            batches += 1
        return total.item() / batches

    @torch.no_grad()
    def _evaluate(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """Per-member validation NLL and MSE (E,), averaged over all rows."""
        self.model.eval()
        nll_sum = torch.zeros(self.model.ensemble_size, device=self.device)
        mse_sum = torch.zeros_like(nll_sum)
        members = self.model.ensemble_size
        for first in range(0, inputs.shape[0], _EVALUATION_ROWS):
            chunk_inputs = inputs[first: first + _EVALUATION_ROWS]
            chunk_targets = targets[first: first + _EVALUATION_ROWS]
            nll, mse = self.model.validation_scores(chunk_inputs.expand(members, *chunk_inputs.shape),
                                                    chunk_targets.expand(members, *chunk_targets.shape))
            nll_sum += nll * chunk_inputs.shape[0]
            mse_sum += mse * chunk_inputs.shape[0]
        return nll_sum / inputs.shape[0], mse_sum / inputs.shape[0]

    def _keep_improved(self, snapshot: dict[str, Tensor], improved: Tensor) -> None:
        """Copies the improved members' weights (and the shared tensors) into ``snapshot``."""
        for name, value in self.model.state_dict().items():
            if self.model.is_per_member(name):
                snapshot[name][improved] = value[improved]
            else:
                snapshot[name].copy_(value)

    def _log(self, report: EpochReport) -> None:
        if self.csv_path is None:
            return
        new_file = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.csv_path, "a", newline="") as file:
            writer = csv.writer(file)
            if new_file:
                writer.writerow(CSV_COLUMNS)
            writer.writerow([f"{value:.6g}" if isinstance(value, float) else value
                             for value in astuple(report)])


def keep_freed_memory_in_heap() -> None:
    """Raises glibc's mmap and trim thresholds so that freed tensor memory is reused instead of returned to the
    system and faulted back in. Process-wide; a no-op where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # allocations below 32 MiB (the most glibc allows) come from the heap...
    mallopt(_M_TRIM_THRESHOLD, 512 << 20)  # ...which keeps up to 512 MiB of free memory for reuse


def plot_training_curves(csv_path: str | os.PathLike, png_path: str | os.PathLike) -> Path:
    """Draws the curves a :class:`ModelTrainer` logged: losses and validation MSE per epoch, rounds marked.

    Returns:
        the PNG's path.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    with open(csv_path, newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        raise ValueError(f"{csv_path} holds no epochs")
    step = list(range(1, len(rows) + 1))
    figure, (losses, errors) = pyplot.subplots(1, 2, figsize=(11, 4))
    for column, label in (("train_loss", "training loss"), ("validation_nll", "validation NLL (nats/dim)")):
        losses.plot(step, [float(row[column]) for row in rows], label=label)
    errors.semilogy(step, [float(row["validation_mse"]) for row in rows], label="validation MSE (normalised)")
    for axes in (losses, errors):
        for index in range(1, len(rows)):
            if rows[index]["round"] != rows[index - 1]["round"]:
                axes.axvline(index + 0.5, color="grey", linewidth=0.5)
        axes.set_xlabel("epoch (all rounds; grey lines: new data)")
        axes.legend()
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    pyplot.close(figure)
    return Path(png_path)


def _kept(keep: Callable[[np.ndarray, np.ndarray], np.ndarray], batch: TransitionBatch) -> np.ndarray:
    """``keep``'s (N,) bool mask for ``batch``, checked to have one entry per transition."""
    mask = np.asarray(keep(batch.states, batch.next_states))
    if mask.dtype != np.bool_ or mask.shape != (len(batch),):
        raise ValueError(f"keep must return a bool mask of shape ({len(batch)},), got {mask.dtype} {mask.shape}")
    return mask
