"""The models learn what they should: a nonlinear system, aleatoric noise, epistemic disagreement, warm starts."""

import csv

import numpy as np
import pytest
import torch

from mbrl_ros.data import ReplayBuffer, TransitionBatch
from mbrl_ros.models import DeterministicMLP, ModelTrainer, ProbabilisticEnsemble, TrainerConfig, plot_training_curves

from support import TORCH_DEVICES

QUIET = {"progress": False}


def transitions(states: np.ndarray, actions: np.ndarray, next_states: np.ndarray) -> TransitionBatch:
    count = len(states)
    return TransitionBatch(states.astype(np.float32), actions.astype(np.float32), next_states.astype(np.float32),
                           np.zeros(count, np.float32), np.zeros(count, bool))


def pendulum_step(states: np.ndarray, actions: np.ndarray, dt: float = 0.05) -> np.ndarray:
    """Semi-implicit Euler step of a unit pendulum: state (angle rad, velocity rad/s), action torque (N m)."""
    angle, velocity = states[:, 0], states[:, 1]
    velocity = velocity + dt * (-9.81 * np.sin(angle) + actions[:, 0])
    return np.stack([angle + dt * velocity, velocity], axis=1)


def pendulum_data(rng: np.random.Generator, count: int) -> TransitionBatch:
    states = np.stack([rng.uniform(-np.pi, np.pi, count), rng.uniform(-8, 8, count)], axis=1)
    actions = rng.uniform(-2, 2, (count, 1))
    return transitions(states, actions, pendulum_step(states, actions))


def no_actions(count: int) -> np.ndarray:
    return np.zeros((count, 0))


def test_mlp_fits_a_pendulum_step_to_a_small_held_out_error():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    train, validation, test = pendulum_data(rng, 3000), pendulum_data(rng, 300), pendulum_data(rng, 1000)
    model = DeterministicMLP(2, 1, hidden_layers=2, hidden_units=128)
    ModelTrainer(model, TrainerConfig(max_epochs=100, patience=8, **QUIET)).fit(train, validation)

    with torch.no_grad():
        predicted, variance = model.predict(torch.from_numpy(test.states), torch.from_numpy(test.actions))
    assert variance is None and predicted.shape == (1, 1000, 2)
    rmse = np.sqrt(((predicted[0].numpy() - test.next_states) ** 2).mean(axis=0))
    delta_std = (test.next_states - test.states).std(axis=0)
    assert (rmse < 0.05 * delta_std).all(), f"held-out RMSE {rmse} vs state-change std {delta_std}"


def noise_std(x: np.ndarray) -> np.ndarray:
    """The true standard deviation of the heteroscedastic system: 0.02 at x = -1 to 0.12 at x = 1."""
    return 0.02 + 0.05 * (x + 1)


def test_ensemble_recovers_heteroscedastic_noise_within_20_percent():
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (4000, 1))
    y = x + 0.5 * np.sin(3 * x) + noise_std(x) * rng.normal(size=x.shape)
    model = ProbabilisticEnsemble(1, 0, ensemble_size=5, hidden_layers=3, hidden_units=64)
    ModelTrainer(model, TrainerConfig(max_epochs=200, patience=10, seed=1, **QUIET)).fit(
        transitions(x, no_actions(4000), y))

    grid = np.linspace(-0.95, 0.95, 39, dtype=np.float32)[:, None]
    with torch.no_grad():
        _, variance = model.predict(torch.from_numpy(grid), torch.zeros(39, 0))
    predicted_std = variance.mean(dim=0).sqrt()[:, 0].numpy()
    relative_error = np.abs(predicted_std / noise_std(grid[:, 0]) - 1)
    assert relative_error.max() < 0.2, f"predicted/true std: {np.round(predicted_std / noise_std(grid[:, 0]), 3)}"


def test_ensemble_disagrees_far_more_in_a_gap_between_data_clusters():
    torch.manual_seed(2)
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(-1, -0.5, (1000, 1)), rng.uniform(0.5, 1, (1000, 1))])
    y = x + 0.5 * np.sin(3 * x) + 0.02 * rng.normal(size=x.shape)
    model = ProbabilisticEnsemble(1, 0, ensemble_size=5, hidden_layers=3, hidden_units=64)
    ModelTrainer(model, TrainerConfig(max_epochs=200, patience=10, seed=2, **QUIET)).fit(
        transitions(x, no_actions(2000), y))

    grid = np.linspace(-1, 1, 41, dtype=np.float32)[:, None]
    with torch.no_grad():
        mean, _ = model.predict(torch.from_numpy(grid), torch.zeros(41, 0))
    disagreement = mean.std(dim=0)[:, 0].numpy()
    on_data, in_gap = np.abs(grid[:, 0]) >= 0.5, np.abs(grid[:, 0]) <= 0.25
    ratio = disagreement[in_gap].mean() / disagreement[on_data].mean()
    assert ratio > 5, f"disagreement in the gap is only {ratio:.2f} times that on the data"


def test_training_is_reproducible_from_the_seed():
    def train_once() -> list[torch.Tensor]:
        torch.manual_seed(3)
        data = pendulum_data(np.random.default_rng(3), 500)
        model = ProbabilisticEnsemble(2, 1, ensemble_size=3, hidden_layers=2, hidden_units=32)
        ModelTrainer(model, TrainerConfig(max_epochs=3, seed=3, **QUIET)).fit(data)
        return list(model.state_dict().values())

    first, second = train_once(), train_once()
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_early_stopping_keeps_the_best_weights_and_logs_every_epoch(tmp_path):
    torch.manual_seed(4)
    rng = np.random.default_rng(4)
    # a tiny noisy training set overfits fast: validation stops improving long before max_epochs
    x = rng.uniform(-1, 1, (64, 1))
    train = transitions(x, no_actions(64), x + 0.3 * rng.normal(size=x.shape))
    x_val = rng.uniform(-1, 1, (500, 1))
    validation = transitions(x_val, no_actions(500), x_val + 0.3 * rng.normal(size=x_val.shape))
    model = DeterministicMLP(1, 0, hidden_layers=2, hidden_units=256)
    log = tmp_path / "curves.csv"
    trainer = ModelTrainer(model, TrainerConfig(max_epochs=400, patience=20, batch_size=16, learning_rate=3e-3,
                                                **QUIET), csv_path=log)
    result = trainer.fit(train, validation)

    assert result.stopped_early and result.epochs < 400
    rows = list(csv.DictReader(log.open()))
    assert len(rows) == result.epochs
    assert [int(row["epoch"]) for row in rows] == list(range(1, result.epochs + 1))
    final_nll = model.validation_scores(*_normalised(model, validation))[0].item()
    assert final_nll == pytest.approx(result.best_validation_nll[0], abs=1e-5)
    assert final_nll < float(rows[-1]["validation_nll"]), "the weights of the last (overfitted) epoch were kept"
    png = plot_training_curves(log, tmp_path / "curves.png")
    assert png.stat().st_size > 10_000


def _normalised(model, batch: TransitionBatch) -> tuple[torch.Tensor, torch.Tensor]:
    states = torch.from_numpy(batch.states)
    inputs = model.input_normalizer.normalize(torch.cat([states, torch.from_numpy(batch.actions)], dim=-1))
    targets = model.target_normalizer.normalize(torch.from_numpy(batch.next_states) - states)
    return inputs[None], targets[None]


def test_continuing_on_new_data_starts_from_what_was_learnt(tmp_path):
    torch.manual_seed(5)
    rng = np.random.default_rng(5)
    buffer = ReplayBuffer(2, 1)
    first = pendulum_data(rng, 2000)
    buffer.add(first.states, first.actions, first.next_states)
    log = tmp_path / "rounds.csv"
    model = ProbabilisticEnsemble(2, 1, ensemble_size=3, hidden_layers=2, hidden_units=64)
    trainer = ModelTrainer(model, TrainerConfig(max_epochs=60, patience=5, **QUIET), csv_path=log)
    trainer.fit_buffer(buffer)
    more = pendulum_data(rng, 500)
    buffer.add(more.states, more.actions, more.next_states)

    second = trainer.fit_buffer(buffer)
    assert second.round == 1
    rows = list(csv.DictReader(log.open()))
    learnt = float([row for row in rows if row["round"] == "0"][-1]["validation_nll"])
    continued = float([row for row in rows if row["round"] == "1"][0]["validation_nll"])
    # new data from the same system: the continued model is good from its first epoch on, keeping most of what the
    # first round gained over one epoch from scratch (how much that is depends on the torch build's numerics)
    scratch = ProbabilisticEnsemble(2, 1, ensemble_size=3, hidden_layers=2, hidden_units=64)
    scratch_result = ModelTrainer(scratch, TrainerConfig(max_epochs=1, **QUIET)).fit_buffer(buffer)
    one_epoch = min(scratch_result.best_validation_nll)
    assert one_epoch - learnt > 0.25, "the first round learnt too little for this test to mean anything"
    assert continued < one_epoch - 0.5 * (one_epoch - learnt), (continued, learnt, one_epoch)


def test_elites_are_the_members_with_the_best_validation_scores():
    torch.manual_seed(6)
    data = pendulum_data(np.random.default_rng(6), 600)
    model = ProbabilisticEnsemble(2, 1, ensemble_size=4, hidden_layers=2, hidden_units=32)
    result = ModelTrainer(model, TrainerConfig(max_epochs=5, num_elites=2, **QUIET)).fit(data)
    expected = sorted(np.argsort(result.best_validation_score)[:2].tolist())
    assert result.elites == expected == model.elites()
    inputs, targets = _normalised(model, data)
    _, mse = model.validation_scores(inputs.expand(4, -1, -1), targets.expand(4, -1, -1))
    torch.testing.assert_close(torch.tensor(result.best_validation_score), 0.5 * mse.log())  # PETS: held-out MSE


@pytest.mark.parametrize("validation_score", ["mse", "nll"])
def test_a_held_out_transition_no_model_predicts_does_not_stop_the_model_learning(validation_score: str):
    """Deterministic data (a simulator) and one held-out jump (a cart hitting its end stop): under the NLL
    the variance collapses on the training data and makes every update look worse than none."""
    torch.manual_seed(8)
    rng = np.random.default_rng(8)

    def deterministic(count: int) -> TransitionBatch:
        x = rng.uniform(-1, 1, (count, 1))
        return transitions(x, no_actions(count), x + 0.2 * np.sin(3 * x))

    clean = deterministic(200)
    validation = deterministic(40)
    validation = transitions(np.vstack([validation.states, [[0.0]]]), no_actions(41),
                             np.vstack([validation.next_states, [[2.0]]]))  # a jump ten times the largest step
    model = ProbabilisticEnsemble(1, 0, ensemble_size=2, hidden_layers=2, hidden_units=64)
    trainer = ModelTrainer(model, TrainerConfig(max_epochs=3, batch_size=32, validation_score=validation_score,
                                                **QUIET))
    trainer.fit(deterministic(100), validation)  # the first episode: a rough model

    def clean_error() -> float:
        inputs, targets = _normalised(model, clean)
        return model.validation_scores(inputs.expand(2, -1, -1), targets.expand(2, -1, -1))[1].mean().item()

    rough = clean_error()
    for _ in range(4):  # more episodes of the same system
        trainer.fit(deterministic(1000), validation)
    improvement = rough / clean_error()
    if validation_score == "mse":
        assert improvement > 5, f"the model learned from 4000 more transitions only {improvement:.2f}x"
    else:  # why the default is the held-out MSE: here the NLL keeps the rough model
        assert improvement < 2


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_the_trained_model_lives_and_predicts_on_the_training_device(device):
    data = pendulum_data(np.random.default_rng(7), 500)
    model = ProbabilisticEnsemble(2, 1, ensemble_size=2, hidden_layers=2, hidden_units=32)
    ModelTrainer(model, TrainerConfig(max_epochs=2, device=device, **QUIET)).fit(data)
    mean, variance = model.predict(torch.zeros(4, 2, device=device), torch.zeros(4, 1, device=device))
    assert mean.device.type == variance.device.type == device
    assert torch.isfinite(mean).all() and (variance > 0).all()


def test_asking_for_cuda_without_it_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        ModelTrainer(DeterministicMLP(2, 1), TrainerConfig(device="cuda"))


def test_a_warm_round_anneals_the_learning_rate_over_a_few_epochs(tmp_path):
    torch.manual_seed(8)
    rng = np.random.default_rng(8)
    log = tmp_path / "rounds.csv"
    model = ProbabilisticEnsemble(2, 1, ensemble_size=2, hidden_layers=2, hidden_units=32)
    config = TrainerConfig(max_epochs=30, warm_epochs=4, learning_rate=2e-3, warm_final_lr_fraction=0.1, **QUIET)
    trainer = ModelTrainer(model, config, csv_path=log)
    first = trainer.fit(pendulum_data(rng, 1000), pendulum_data(rng, 200))
    assert not first.warm and first.epochs > 4
    second = trainer.fit(pendulum_data(rng, 1200), pendulum_data(rng, 200))
    assert second.warm and second.epochs == 4
    rates = [float(row["learning_rate"]) for row in csv.DictReader(log.open()) if row["round"] == "1"]
    assert rates == pytest.approx([2e-3, 2e-3 * 0.775, 2e-3 * 0.325, 2e-4])
    first_round = [row for row in csv.DictReader(log.open()) if row["round"] == "0"]
    assert float(first_round[-1]["learning_rate"]) == pytest.approx(2e-4), "the first round also ends annealed"


def test_data_from_a_new_region_gets_a_full_round_not_a_warm_one():
    torch.manual_seed(9)
    rng = np.random.default_rng(9)
    model = ProbabilisticEnsemble(2, 1, ensemble_size=2, hidden_layers=2, hidden_units=32)
    trainer = ModelTrainer(model, TrainerConfig(max_epochs=30, warm_epochs=3, **QUIET))
    trainer.fit(pendulum_data(rng, 1000))
    # the same pendulum, now spinning fast: velocities far outside the first data
    states = np.stack([rng.uniform(-np.pi, np.pi, 1000), rng.uniform(20, 30, 1000)], axis=1)
    actions = rng.uniform(-2, 2, (1000, 1))
    shifted = transitions(states, actions, pendulum_step(states, actions))
    result = trainer.fit(TransitionBatch.concatenate([pendulum_data(rng, 1000), shifted]))
    assert not result.warm and result.epochs > 3


@pytest.mark.parametrize("setting", [{"batch_size": 0}, {"patience": 0}, {"max_epochs": -1}, {"warm_epochs": 0},
                                     {"validation_score": "r2"}])
def test_invalid_trainer_settings_are_rejected(setting):
    with pytest.raises(ValueError):
        ModelTrainer(DeterministicMLP(2, 1, hidden_units=8), TrainerConfig(**setting))


def test_training_on_nothing_or_on_non_finite_data_is_a_clear_error():
    trainer = ModelTrainer(DeterministicMLP(2, 1, hidden_units=8), TrainerConfig(**QUIET))
    data = pendulum_data(np.random.default_rng(10), 10)
    with pytest.raises(ValueError, match="no transitions"):
        trainer.fit(data[:0])
    data.states[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        trainer.fit(data)


def test_fit_buffer_keeps_what_keep_marks_without_moving_transitions_between_train_and_validation():
    rng = np.random.default_rng(11)
    buffer = ReplayBuffer(2, 1)
    data = pendulum_data(rng, 600)
    buffer.add(data.states, data.actions, data.next_states)
    config = TrainerConfig(max_epochs=1, validation_fraction=0.2, **QUIET)
    _, validation = buffer.split(config.validation_fraction, config.seed)

    def clockwise(states: np.ndarray, next_states: np.ndarray) -> np.ndarray:
        return next_states[:, 1] < states[:, 1] + 0.2

    kept = clockwise(data.states, data.next_states)
    assert 0 < kept.sum() < len(kept)
    model = ProbabilisticEnsemble(2, 1, ensemble_size=2, hidden_layers=1, hidden_units=16)
    result = ModelTrainer(model, config).fit_buffer(buffer, keep=clockwise)
    assert result.validation_transitions == int(clockwise(validation.states, validation.next_states).sum())
    assert result.train_transitions == int(kept.sum()) - result.validation_transitions
    assert result.left_out_transitions == len(kept) - int(kept.sum())

    whole = ModelTrainer(model, config).fit_buffer(buffer)
    assert (whole.train_transitions, whole.validation_transitions, whole.left_out_transitions) == (
        len(kept) - len(validation), len(validation), 0)
    unheld = ModelTrainer(model, TrainerConfig(max_epochs=1, validation_fraction=0.0, **QUIET)).fit_buffer(buffer)
    assert (unheld.train_transitions, unheld.validation_transitions) == (len(kept), 0)  # training rows scored it

    with pytest.raises(ValueError, match="bool mask of shape"):
        ModelTrainer(model, config).fit_buffer(buffer, keep=lambda states, next_states: states[:, 0])
