"""Training of learned dynamics models: mini-batch Adam, bootstrap, early stopping, elites, warm starts.

A :class:`ModelTrainer` owns one model and its optimizer. Each :meth:`ModelTrainer.fit` call trains on all
the data given (a round); calling it again when new transitions have arrived continues from the current
weights and optimizer state instead of starting over. The normalisers are refitted on the new data and the
network is re-expressed for them, so the model's function is unchanged by the refit
(:meth:`~mbrl_ros.models.base.LearnedDynamicsModel.refit_normalizers`).

Every epoch is logged to a CSV (one row per epoch, all rounds in one file) that
:func:`plot_training_curves` draws.
"""

import csv
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from mbrl_ros.data.replay_buffer import ReplayBuffer
from mbrl_ros.data.transitions import TransitionBatch
from mbrl_ros.models.base import LearnedDynamicsModel

CSV_COLUMNS = ("round", "epoch", "train_transitions", "validation_transitions", "train_loss", "validation_nll",
               "validation_mse", "best_validation_nll", "learning_rate", "elapsed_s")
_EVALUATION_ROWS = 8192  # validation rows per forward pass (bounds memory)
_MIN_VALIDATION_ROWS = 1  # with fewer held-out transitions, training data scores the epochs (as mbrl-lib does)


@dataclass
class TrainerConfig:
    """Hyper-parameters of :class:`ModelTrainer`.

    Attributes:
        batch_size: transitions per member per step.
        learning_rate: Adam's step size.
        weight_decay: L2 coefficient, one for all layers or one per layer (hidden layers, then output; PETS
            uses growing values, e.g. [2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4]).
        max_epochs: the most epochs one round runs.
        patience: epochs without a member improving before the round stops.
        min_improvement: decrease of a member's validation NLL (nats per dimension) that counts as improving.
        validation_fraction: share of the transitions held out (ReplayBuffer.split) by :meth:`fit_buffer`.
        bootstrap: each member trains on its own resample (with replacement) of the training set.
        num_elites: members kept as elites after each round (best validation NLL); None: all of them.
        time_limit: seconds after which a round stops at the end of its epoch; None: no limit.
        seed: seeds the bootstrap, the batch order and the split.
        device: torch device to train on, e.g. "cpu" or "cuda".
        progress: show a progress bar.
    """

    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float | list[float] = 5e-5
    max_epochs: int = 200
    patience: int = 5
    min_improvement: float = 0.01
    validation_fraction: float = 0.1
    bootstrap: bool = True
    num_elites: int | None = None
    time_limit: float | None = None
    seed: int = 0
    device: str = "cpu"
    progress: bool = True


@dataclass
class TrainingResult:
    """What one round of training did.

    Attributes:
        round: 0 for the first :meth:`ModelTrainer.fit`, then 1, 2, ...
        epochs: epochs run.
        stopped_early: stopped because no member improved for ``patience`` epochs.
        best_validation_nll: (E,) per member, nats per dimension, in the normalised units of this round.
        elites: the elite members.
        train_transitions: transitions trained on.
        validation_transitions: transitions held out.
        wall_time: seconds the round took.
    """

    round: int
    epochs: int
    stopped_early: bool
    best_validation_nll: list[float] = field(default_factory=list)
    elites: list[int] = field(default_factory=list)
    train_transitions: int = 0
    validation_transitions: int = 0
    wall_time: float = 0.0


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
        self.model = model.to(self.device)
        self.csv_path = Path(csv_path) if csv_path is not None else None
        self.optimizer = torch.optim.Adam(
            model.weight_decay_parameter_groups(self.config.weight_decay), lr=self.config.learning_rate,
            foreach=True,
        )
        self.rounds = 0

    def fit_buffer(self, buffer: ReplayBuffer) -> TrainingResult:
        """One round on everything in ``buffer``, split with ``config.validation_fraction`` and ``config.seed``."""
        train, validation = buffer.split(self.config.validation_fraction, self.config.seed)
        return self.fit(train, validation)

    def fit(self, train: TransitionBatch, validation: TransitionBatch | None = None) -> TrainingResult:
        """One round of training; continues from the current weights if the model was trained before.

        Args:
            train: transitions to train on (at least one).
            validation: held-out transitions scoring each epoch; if None or empty, training data scores them.

        Returns:
            what the round did; the model holds each member's best weights of the round, in eval mode.
        """
        if len(train) == 0:
            raise ValueError("cannot train on no transitions")
        config, model = self.config, self.model
        start = time.perf_counter()
        round_index = self.rounds
        self.rounds += 1
        inputs, targets = self._tensors(train)
        model.refit_normalizers(inputs, targets, preserve_function=model.input_normalizer.fitted)
        inputs, targets = model.input_normalizer.normalize(inputs), model.target_normalizer.normalize(targets)
        if validation is not None and len(validation) >= _MIN_VALIDATION_ROWS:
            validation_inputs, validation_targets = self._tensors(validation)
            validation_inputs = model.input_normalizer.normalize(validation_inputs)
            validation_targets = model.target_normalizer.normalize(validation_targets)
        else:
            validation_inputs, validation_targets = inputs[:_EVALUATION_ROWS], targets[:_EVALUATION_ROWS]
        generator = torch.Generator(self.device).manual_seed(config.seed * 1_000_003 + round_index)
        count, members = inputs.shape[0], model.ensemble_size
        if config.bootstrap and members > 1:
            rows = torch.randint(count, (members, count), generator=generator, device=self.device)
        else:
            rows = torch.arange(count, device=self.device).expand(members, count)

        best, _ = self._evaluate(validation_inputs, validation_targets)
        snapshot = {name: value.clone() for name, value in model.state_dict().items()}
        epochs_since_improvement, epoch, stopped_early = 0, 0, False
        progress = tqdm(total=config.max_epochs, desc=f"training {model.kind} (round {round_index})",
                        unit="epoch", disable=not config.progress, leave=False)
        with progress:
            for epoch in range(1, config.max_epochs + 1):
                model.train()
                train_loss = self._train_epoch(inputs, targets, rows[:, torch.randperm(count, generator=generator,
                                                                                       device=self.device)])
                nll, mse = self._evaluate(validation_inputs, validation_targets)
                improved = best - nll > config.min_improvement
                if improved.any():
                    self._keep_improved(snapshot, improved)
                    best = torch.where(improved, nll, best)
                    epochs_since_improvement = 0
                else:
                    epochs_since_improvement += 1
                self._log(round_index, epoch, len(train), len(validation_inputs), train_loss, nll, mse, best,
                          time.perf_counter() - start)
                progress.update()
                progress.set_postfix(train=f"{train_loss:.4g}", val_nll=f"{nll.mean().item():.4g}")
                if epochs_since_improvement >= config.patience:
                    stopped_early = True
                    break
                if config.time_limit is not None and time.perf_counter() - start > config.time_limit:
                    break
        model.load_state_dict(snapshot)
        elites = torch.argsort(best)[: config.num_elites or members].sort().values.tolist()
        if hasattr(model, "set_elites"):
            model.set_elites(elites)
        model.eval()
        return TrainingResult(round_index, epoch, stopped_early, best.tolist(), elites, len(train),
                              len(validation_inputs), time.perf_counter() - start)

    def _tensors(self, batch: TransitionBatch) -> tuple[Tensor, Tensor]:
        """Raw model inputs (N, S + A) and targets (N, S) (state changes) on the training device."""
        states = torch.as_tensor(batch.states, device=self.device)
        inputs = torch.cat([states, torch.as_tensor(batch.actions, device=self.device)], dim=-1)
        return inputs, torch.as_tensor(batch.next_states, device=self.device) - states

    def _train_epoch(self, inputs: Tensor, targets: Tensor, rows: Tensor) -> float:
        """One pass over ``rows`` (E, N) (each member its own order), mini-batch by mini-batch; mean loss."""
        total = torch.zeros((), device=self.device)
        batches = 0
        for first in range(0, rows.shape[1], self.config.batch_size):
            batch_rows = rows[:, first: first + self.config.batch_size]
            loss = self.model.training_loss(inputs[batch_rows], targets[batch_rows])
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

    def _log(self, round_index: int, epoch: int, train_transitions: int, validation_transitions: int,
             train_loss: float, nll: Tensor, mse: Tensor, best: Tensor, elapsed: float) -> None:
        if self.csv_path is None:
            return
        new_file = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.csv_path, "a", newline="") as file:
            writer = csv.writer(file)
            if new_file:
                writer.writerow(CSV_COLUMNS)
            writer.writerow([round_index, epoch, train_transitions, validation_transitions, f"{train_loss:.6g}",
                             f"{nll.mean().item():.6g}", f"{mse.mean().item():.6g}", f"{best.mean().item():.6g}",
                             f"{self.optimizer.param_groups[0]['lr']:.6g}", f"{elapsed:.3f}"])


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

