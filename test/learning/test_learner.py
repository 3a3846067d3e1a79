"""Learner and ModelStore: persisted transitions, background retraining, versioned models, resume."""

import csv
import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import torch

from mbrl_ros.learning import Learner, ModelStore, RetrainPolicy, model_factory
from mbrl_ros.models import (
    DeterministicMLP,
    ModelFormatError,
    ProbabilisticEnsemble,
    TrainerConfig,
    model_from_payload,
)
from mbrl_ros.tasks import CartpoleSwingUp

from support import TORCH_DEVICES, wait_for

STATE, ACTION = 3, 2
FAST_TRAINING = TrainerConfig(max_epochs=30, patience=5, batch_size=64, progress=False, seed=0)


def small_model() -> DeterministicMLP:
    return DeterministicMLP(STATE, ACTION, hidden_layers=2, hidden_units=32)


def linear_system(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    states, actions = rng.normal(size=(count, STATE)), rng.uniform(-1, 1, size=(count, ACTION))
    next_states = states + 0.1 * np.c_[actions, actions[:, :1]] - 0.05 * states
    return states, actions, next_states


@pytest.fixture
def learner_factory(tmp_path):
    learners = []

    def make(**kwargs) -> Learner:
        kwargs.setdefault("trainer_config", FAST_TRAINING)
        learner = Learner(tmp_path / "learner", small_model, **kwargs)
        learners.append(learner)
        return learner

    yield make
    for learner in learners:
        learner.close()


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_enough_new_transitions_release_a_stored_model_in_the_background(learner_factory, device):
    """On any training device; the released model loads and predicts on the CPU (a GPU learner, a CPU robot)."""
    releases = []
    learner = learner_factory(policy=RetrainPolicy(every_transitions=500, min_transitions=100),
                              on_release=releases.append,
                              trainer_config=dataclasses.replace(FAST_TRAINING, device=device))
    states, actions, next_states = linear_system(499, seed=0)
    learner.add(states, actions, next_states)
    assert not wait_for(lambda: releases, timeout=0.5), "trained before 500 new transitions"
    learner.add(*linear_system(1, seed=1))
    assert wait_for(lambda: releases, timeout=60)
    release = releases[0]
    assert release.version == 1 and learner.version == 1 and release.transitions == 500
    assert learner.store.latest_version() == 1
    model = model_from_payload(release.payload)
    test_states, test_actions, test_next = linear_system(200, seed=2)
    with torch.no_grad():
        predicted, _ = model.predict(torch.as_tensor(test_states, dtype=torch.float32),
                                     torch.as_tensor(test_actions, dtype=torch.float32))
    error = np.abs(predicted[0].numpy() - test_next).mean()
    assert error < 0.02, f"the released model did not learn the linear system (mean error {error:.3f})"


def test_episode_ends_and_requests_train_once_enough_data_is_there(learner_factory):
    releases = []
    learner = learner_factory(policy=RetrainPolicy(every_transitions=0, min_transitions=100),
                              on_release=releases.append)
    learner.add(*linear_system(50, seed=0))
    learner.end_episode()
    assert not wait_for(lambda: releases, timeout=0.5), "trained on fewer than min_transitions"
    learner.add(*linear_system(100, seed=1))
    learner.end_episode()
    assert wait_for(lambda: len(releases) == 1, timeout=60)
    learner.request_training()
    assert wait_for(lambda: len(releases) == 2, timeout=60)
    assert [release.version for release in releases] == [1, 2]


def test_a_reopened_learner_resumes_transitions_model_and_version(learner_factory):
    first = learner_factory(policy=RetrainPolicy(every_transitions=0))
    first.add(*linear_system(300, seed=0))
    released = first.train_now()
    first.close()

    second = learner_factory(policy=RetrainPolicy(every_transitions=0))
    assert second.version == 1 and len(second.buffer) == 300
    assert second.latest_release.payload.sha256 == released.payload.sha256
    assert second.train_now().version == 2


def test_a_learner_killed_with_sigkill_resumes_with_its_transitions_and_version(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = [{os.path.dirname(__file__)!r}, {os.path.dirname(os.path.dirname(__file__))!r}]
        from test_learner import linear_system, small_model, FAST_TRAINING
        from mbrl_ros.learning import Learner, RetrainPolicy
        learner = Learner({str(tmp_path / "learner")!r}, small_model, FAST_TRAINING,
                          RetrainPolicy(every_transitions=0), flush_interval=0.2)
        for round in range(2):
            learner.add(*linear_system(200, seed=round))
            learner.train_now()
        print("trained", learner.version, len(learner.buffer), flush=True)
        while True:
            learner.add(*linear_system(10, seed=99))
            time.sleep(0.05)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().split() == ["trained", "2", "400"]
    threading.Event().wait(1.0)  # let it stream more transitions, several flushes' worth
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    learner = Learner(tmp_path / "learner", small_model, FAST_TRAINING, RetrainPolicy(every_transitions=0))
    try:
        assert learner.version == 2
        assert len(learner.buffer) > 400, "transitions streamed before the kill were lost"
        assert learner.train_now().version == 3
    finally:
        learner.close()


def test_closing_ends_a_round_in_progress_and_keeps_the_stored_model(tmp_path):
    endless = TrainerConfig(max_epochs=10**6, patience=10**6, warm_epochs=None, batch_size=64,
                           progress=False)
    releases = []
    learner = Learner(tmp_path / "learner", small_model, FAST_TRAINING, RetrainPolicy(every_transitions=0),
                      on_release=releases.append)
    learner.add(*linear_system(300, seed=0))
    learner.train_now()
    learner.close()
    learner = Learner(tmp_path / "learner", small_model, endless, RetrainPolicy(every_transitions=0),
                      on_release=releases.append)
    learner.add(*linear_system(200, seed=1))
    learner.request_training()
    csv = tmp_path / "learner" / "training.csv"
    epochs_before = len(csv.read_text().splitlines())
    assert wait_for(lambda: len(csv.read_text().splitlines()) > epochs_before + 2, timeout=60), "no round started"
    closing = threading.Thread(target=learner.close, daemon=True)
    closing.start()
    closing.join(timeout=60)  # the round alone would run a million epochs
    assert not closing.is_alive(), "close() waited for the round in progress to end on its own"
    assert [release.version for release in releases] == [1], "the cut round was released"
    reopened = Learner(tmp_path / "learner", small_model, FAST_TRAINING, RetrainPolicy(every_transitions=0))
    try:
        assert reopened.version == 1 and len(reopened.buffer) == 500
    finally:
        reopened.close()


def test_transitions_a_task_marks_unlearnable_stay_in_the_buffer_but_out_of_training(tmp_path):
    """40 jumps (a cart stopped by its rail's end, say) among 400 smooth transitions: left out, the model fits the
    smooth dynamics; trained on, they spoil it."""
    states, actions, next_states = linear_system(440, seed=0)
    states[400:, 0] = 10.0
    next_states[400:] = states[400:] + 30.0 * np.random.default_rng(1).normal(size=(40, STATE))

    def clear_of_the_end(s: np.ndarray, s_next: np.ndarray) -> np.ndarray:
        return s[:, 0] < 5.0

    def mean_error(learnable) -> tuple[float, int, int, int]:
        """The released model's mean error, the release's transitions, the buffer's, those the round trained on."""
        learner = Learner(tmp_path / str(learnable is None), small_model, FAST_TRAINING,
                          RetrainPolicy(every_transitions=0, on_episode_end=False), learnable=learnable)
        try:
            learner.add(states, actions, next_states)
            release = learner.train_now()
            test_states, test_actions, test_next = linear_system(200, seed=2)
            inputs = (torch.as_tensor(x, dtype=torch.float32) for x in (test_states, test_actions))
            with torch.no_grad():
                predicted, _ = model_from_payload(release.payload).predict(*inputs)
            last_epoch = list(csv.DictReader((learner.data_dir / "training.csv").open()))[-1]
            used = int(last_epoch["train_transitions"]) + int(last_epoch["validation_transitions"])
            error = float(np.abs(predicted[0].numpy() - test_next).mean())
            return error, release.transitions, len(learner.buffer), used
        finally:
            learner.close()

    kept_error, transitions, stored, used = mean_error(clear_of_the_end)
    assert used == 400 and transitions == stored == 440  # a release counts the buffer its round saw
    assert kept_error < 0.02, f"the model did not learn the smooth system (mean error {kept_error:.3f})"
    spoilt_error, _, _, used = mean_error(None)
    assert used == 440 and spoilt_error > 2 * kept_error, (spoilt_error, kept_error)


def released_weights(release) -> dict[str, torch.Tensor]:
    return model_from_payload(release.payload).state_dict()


def test_every_fresh_every_th_version_is_trained_afresh_and_the_others_continue(tmp_path):
    data = linear_system(400, seed=0)
    policy = RetrainPolicy(every_transitions=0, fresh_every=2)
    learner = Learner(tmp_path / "learner", small_model, FAST_TRAINING, policy)
    try:
        learner.add(*data)
        learner.train_now()
        second = learner.train_now()
        third = learner.train_now()
    finally:
        learner.close()
    torch.manual_seed(7)  # the global generator does not decide a learner's initial weights
    scratch = Learner(tmp_path / "scratch", small_model, FAST_TRAINING, RetrainPolicy(every_transitions=0))
    try:
        scratch.add(*data)
        afresh = scratch.train_now()
    finally:
        scratch.close()
    expected, got = released_weights(afresh), released_weights(second)
    assert all(torch.equal(expected[name], got[name]) for name in expected), \
        "version 2 is not the model a new learner trains on the same data from the same initial weights"
    continued = released_weights(third)
    assert not all(torch.equal(got[name], continued[name]) for name in got), "version 3 was not trained"
    assert third.version == 3 and learner.store.latest_version() == 3


def test_learners_of_one_seed_fed_the_same_transitions_release_the_same_models(tmp_path):
    data = linear_system(400, seed=0)
    policy = RetrainPolicy(every_transitions=0, fresh_every=3)

    def releases(name: str, seed: int, global_seed: int) -> list[dict[str, torch.Tensor]]:
        torch.manual_seed(global_seed)  # the global generator, in another state for each learner
        learner = Learner(tmp_path / name, small_model, dataclasses.replace(FAST_TRAINING, seed=seed), policy)
        try:
            learner.add(*data)
            return [released_weights(learner.train_now()) for _ in range(3)]  # the third afresh
        finally:
            learner.close()

    first, again, other_seed = releases("first", 0, 10), releases("again", 0, 11), releases("other", 1, 10)
    for version, (expected, got) in enumerate(zip(first, again, strict=True), start=1):
        assert all(torch.equal(expected[name], got[name]) for name in expected), f"version {version} differs"
    assert not any(torch.equal(first[0][name], other_seed[0][name]) for name in first[0]), \
        "another seed released the same model"


@pytest.mark.parametrize("fields", [{"fresh_every": -1}, {"fresh_every": True}, {"fresh_every": 2.5},
                                    {"every_transitions": -5}, {"min_transitions": None}])
def test_retrain_policy_refuses_counts_that_are_not_non_negative_integers(fields):
    with pytest.raises(ValueError, match=f"retrain.{next(iter(fields))} must be an integer >= 0"):
        RetrainPolicy(**fields)


def test_a_model_of_other_dimensions_in_the_directory_is_refused(tmp_path):
    ModelStore(tmp_path / "learner" / "models").save(DeterministicMLP(5, 1, 1, 8), version=1)
    with pytest.raises(ValueError, match="state/action sizes"):
        Learner(tmp_path / "learner", small_model, FAST_TRAINING)


def test_model_store_keeps_the_newest_versions_and_survives_a_crash_while_writing(tmp_path):
    store = ModelStore(tmp_path / "models", keep=2)
    models = [small_model() for _ in range(3)]
    for version, model in enumerate(models, start=1):
        store.save(model, version)
    assert store.versions() == [2, 3] and store.latest_version() == 3
    (tmp_path / "models" / ".staging-v000004").mkdir()  # a crash mid-write leaves only a staging directory
    (tmp_path / "models" / "LATEST").write_text("v000009\n")  # ... or a pointer to nothing
    assert store.latest_version() == 3
    loaded = store.load()
    for name, tensor in models[2].state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor)
    with pytest.raises(ValueError, match="not newer"):
        store.save(small_model(), version=3)


def test_a_corrupted_stored_model_is_rejected(tmp_path):
    store = ModelStore(tmp_path / "models")
    path = store.save(small_model(), version=1)
    weights = next(path.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelFormatError):
        store.load()


def test_model_factory_builds_fresh_models_of_the_tasks_sizes_and_refuses_bad_sections_at_once():
    task = CartpoleSwingUp()
    factory = model_factory(task, {"kind": "ensemble", "ensemble_size": 2, "hidden_layers": 1, "hidden_units": 8})
    first, second = factory(), factory()
    assert isinstance(first, ProbabilisticEnsemble) and first is not second
    assert (first.state_dim, first.action_dim, first.ensemble_size) == (task.state_dim, task.action_dim, 2)
    assert isinstance(model_factory(task, {"kind": "mlp", "hidden_units": 8})(), DeterministicMLP)
    assert isinstance(model_factory(task, {})(), ProbabilisticEnsemble)  # the default kind
    import mbrl_ros.planet  # noqa: F401  (registers the latent model kind, rssm)

    for section, message in (({"kind": "transformer"}, "^unknown model kind 'transformer'; known kinds: "),
                             ({"kind": "rssm"}, "not a dynamics model the learner can train"),
                             ({"kind": "ensemble", "hidden_sizes": 8}, "hidden_sizes")):
        with pytest.raises(ValueError, match=message):
            model_factory(task, section)
