"""The dynamics learner, ROS-free: transitions in, versioned models out.

It persists every transition (crash-safe replay buffer), retrains the model in a background thread when its
:class:`RetrainPolicy` says so or when asked, continuing from the previous weights (or, every
``RetrainPolicy.fresh_every`` releases, from a freshly initialised model), and releases each new model with an
increasing version: stored atomically on disk and handed to ``on_release`` (the ROS node
publishes it). A learner reopened on the same directory resumes its transitions, model and version.

A fresh model's initial weights are drawn from the trainer's seed, as are the split, the bootstrap and the batch
order: learners fed the same transitions release the same models.
"""

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mbrl_ros.data import DEFAULT_FLUSH_INTERVAL, ReplayBuffer
from mbrl_ros.learning.model_store import ModelStore
from mbrl_ros.models import (
    EpochReport,
    LearnedDynamicsModel,
    ModelPayload,
    ModelTrainer,
    TrainerConfig,
    model_class,
    model_to_payload,
)
from mbrl_ros.settings import is_integer
from mbrl_ros.tasks import Task

_LOG = logging.getLogger(__name__)


def model_factory(task: Task, settings: dict[str, Any]) -> Callable[[], LearnedDynamicsModel]:
    """A function building a fresh, untrained model for ``task``'s state and action sizes from a config's ``model``
    section (``kind``, default ``ensemble``, and the architecture's keyword arguments).

    Raises:
        ValueError: an unknown kind, a kind the learner cannot train, or settings the model rejects (checked now,
            not later in a training thread).
    """
    settings = dict(settings)
    kind = settings.pop("kind", "ensemble")
    try:
        cls = model_class(kind)
    except KeyError as error:
        raise ValueError(error.args[0]) from None
    if not issubclass(cls, LearnedDynamicsModel):
        raise ValueError(f"model kind {kind!r} is not a dynamics model the learner can train")
    try:
        cls(task.state_dim, task.action_dim, **settings)
    except TypeError as error:  # a misspelt or unknown setting
        raise ValueError(f"model section for kind {kind!r}: {error}") from None
    return lambda: cls(task.state_dim, task.action_dim, **settings)


@dataclass(frozen=True)
class RetrainPolicy:
    """When the learner retrains on its own (it always retrains when asked).

    Attributes:
        every_transitions: after this many new transitions since the last training (0: never by count).
        on_episode_end: at the end of each episode.
        min_transitions: never with fewer transitions than this in the buffer.
        fresh_every: every release whose version is a multiple of this is trained from a freshly initialised
            model and optimizer on all the data (a full early-stopped round) instead of continuing the last
            model, which stays in use until the fresh one is ready. Hundreds of short warm rounds, each continuing
            the one before from the first few hundred transitions on, end with a model that predicts worse than
            one trained afresh on the same data (the Shadow hand's cube: 16 % of a 7-step turn explained against
            27 %), though in the hand's loop every 50th afresh did not succeed more often
            (bench/EXPERIMENTS.md). 0: always continue.
    """

    every_transitions: int = 1000
    on_episode_end: bool = True
    min_transitions: int = 100
    fresh_every: int = 0

    def __post_init__(self) -> None:
        for name in ("every_transitions", "min_transitions", "fresh_every"):
            value = getattr(self, name)
            if not is_integer(value) or value < 0:
                raise ValueError(f"retrain.{name} must be an integer >= 0, got {value!r}")


@dataclass(frozen=True)
class ModelRelease:
    """A model the learner released: its version, the buffer's transitions its round saw (those the task marks
    unlearnable included), its validation scores and its message payload."""

    version: int
    transitions: int
    validation_nll: float | None  # mean over members of the kept weights' validation NLL; None for a resumed model
    validation_mse: float | None  # the same for their validation MSE (normalised units)
    payload: ModelPayload


class Learner:
    """Persists transitions, retrains in the background, releases versioned models.

    Args:
        data_dir: transitions go to ``data_dir/transitions``, models to ``data_dir/models``, training curves to
            ``data_dir/training.csv``; an existing directory is resumed.
        model_factory: builds a fresh, untrained model (also fixes the state and action sizes); it is called with
            torch's global generator seeded from ``trainer_config.seed``.
        trainer_config: how each round trains.
        policy: when to retrain.
        on_release: called (in the training thread) with every new release; a resumed model is
            :attr:`latest_release` from the start.
        flush_interval: seconds between writes of new transitions to disk (the most a crash can lose).
        learnable: ``learnable(states (N, S), next_states (N, S)) -> (N,) bool``, the transitions a round trains
            and validates on (a task's :meth:`~mbrl_ros.tasks.Task.learnable`); the others stay in the buffer.
            None: all of them.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike,
        model_factory: Callable[[], LearnedDynamicsModel],
        trainer_config: TrainerConfig | None = None,
        policy: RetrainPolicy | None = None,
        on_release: Callable[[ModelRelease], None] | None = None,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        learnable: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    ):
        self.data_dir = Path(data_dir)
        self._learnable = learnable
        self.policy = policy or RetrainPolicy()
        self._on_release = on_release
        self._model_factory, self._trainer_config = model_factory, trainer_config
        self._seed = (trainer_config or TrainerConfig()).seed
        model = self._fresh_model()
        self.store = ModelStore(self.data_dir / "models")
        self.version = self.store.latest_version()
        if self.version:
            stored = self.store.load(expected_kind=model.kind)
            if (stored.state_dim, stored.action_dim) != (model.state_dim, model.action_dim):
                raise ValueError(
                    f"{self.store.path(self.version)} holds a model for state/action sizes "
                    f"{stored.state_dim}/{stored.action_dim}, not {model.state_dim}/{model.action_dim}"
                )
            model = stored
        self.buffer = ReplayBuffer(model.state_dim, model.action_dim, self.data_dir / "transitions", flush_interval)
        self.trainer = ModelTrainer(model, trainer_config, csv_path=self.data_dir / "training.csv")
        self.latest_release: ModelRelease | None = (
            ModelRelease(self.version, len(self.buffer), None, None, model_to_payload(model, {"version": self.version}))
            if self.version
            else None
        )
        self._new_transitions = 0
        self._stopping = threading.Event()
        self._background = threading.Condition()  # guards the two flags below and signals their changes
        self._round_requested = self._round_running = False
        self._lock = threading.Lock()  # one training round at a time
        self._thread = threading.Thread(target=self._train_when_wanted, name="learner", daemon=True)
        self._thread.start()

    @property
    def model(self) -> LearnedDynamicsModel:
        return self.trainer.model

    def add(
        self, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray,
        rewards: float | np.ndarray = 0.0, dones: bool | np.ndarray = False,
    ) -> None:
        """Adds one transition or a batch (see :meth:`ReplayBuffer.add`); may start a training round."""
        self.buffer.add(states, actions, next_states, rewards, dones)
        self._new_transitions += 1 if np.ndim(states) == 1 else len(states)
        every = self.policy.every_transitions
        if every and self._new_transitions >= every:
            self.request_training()

    def end_episode(self) -> None:
        if self.policy.on_episode_end:
            self.request_training()

    def request_training(self) -> None:
        """Starts a training round in the background (once the buffer holds ``min_transitions``)."""
        with self._background:
            self._round_requested = True
            self._background.notify_all()

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Waits until no background round is requested or running; False if one still is after ``timeout`` s."""
        with self._background:
            return self._background.wait_for(lambda: not (self._round_requested or self._round_running), timeout)

    def train_now(self) -> ModelRelease | None:
        """One training round in the caller's thread; None when there are too few transitions or :meth:`close`
        cut the round short (it ends at its epoch's end and is dropped: the stored model stays the newest)."""
        interrupted = False

        def stop_when_closing(_report: EpochReport) -> bool:
            nonlocal interrupted
            interrupted = self._stopping.is_set()
            return interrupted

        with self._lock:
            if len(self.buffer) < max(1, self.policy.min_transitions):
                return None
            self._new_transitions = 0
            trainer, fresh_every = self.trainer, self.policy.fresh_every
            if self.version and fresh_every and (self.version + 1) % fresh_every == 0:
                trainer = ModelTrainer(self._fresh_model(), self._trainer_config, self.trainer.csv_path)
            result = trainer.fit_buffer(self.buffer, on_epoch=stop_when_closing, keep=self._learnable)
            if interrupted:
                return None
            self.trainer = trainer  # a fresh one is swapped in only now: the continued model served during its round
            self.version += 1
            validation_nll = float(np.mean(result.best_validation_nll))
            validation_mse = float(np.mean(result.best_validation_mse))
            seen = result.train_transitions + result.validation_transitions + result.left_out_transitions
            extra = {"version": self.version, "transitions": seen,
                     "validation_nll": validation_nll, "validation_mse": validation_mse}
            self.store.save(self.model, self.version, extra)
            release = ModelRelease(self.version, extra["transitions"], validation_nll, validation_mse,
                                   model_to_payload(self.model, extra))
            self.latest_release = release
        if self._on_release is not None:
            self._on_release(release)
        return release

    def _fresh_model(self) -> LearnedDynamicsModel:
        """A new model from the factory, its initial weights drawn from the seed (the global generator's state
        outside is left as it was)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed)
            return self._model_factory()

    def close(self) -> None:
        """Ends a round in progress at its epoch's end (dropping it), stops the training thread, flushes the buffer."""
        with self._background:
            self._stopping.set()
            self._background.notify_all()
        self._thread.join()
        self.buffer.close()
        with self._background:
            self._round_requested = False
            self._background.notify_all()

    def _train_when_wanted(self) -> None:
        while True:
            with self._background:
                self._background.wait_for(lambda: self._round_requested or self._stopping.is_set())
                if self._stopping.is_set():
                    return
                self._round_requested, self._round_running = False, True
            try:
                self.train_now()
            except Exception:  # a failed round must not end the learner: keep the data, try again next time
                _LOG.exception("training round failed; the previous model stays in use")
            finally:
                with self._background:
                    self._round_running = False
                    self._background.notify_all()
