"""The peer side of bench/bench_models.py: mbrl-lib 0.2.0's GaussianMLP + ModelTrainer on the bench's data.

Runs under .venv-peer (``make peer``) through bench/common.py ``run_peer``; prints one JSON object as its last
line. The model is built directly (no hydra), as mbrl-lib's PETS example builds it from its configs:
``OneDTransitionRewardModel(GaussianMLP(...), target_is_delta=True, normalize=True)`` trained by
``ModelTrainer`` on ``get_basic_buffer_iterators`` (bootstrap per member), the normaliser updated on all data
before each round as ``train_model_and_save_model_and_data`` does.

Usage:
    peer_models.py throughput DATA.npz EPOCHS REPEATS
    peer_models.py retrain DATA.npz EPOCHS PATIENCE LEARNING_RATE WEIGHT_DECAY SEED
"""

import json
import math
import os
import sys
import time
from collections.abc import Callable

import mbrl.models
import mbrl.util.common
import numpy as np
import torch
from mbrl.util.replay_buffer import ReplayBuffer, TransitionIterator

MEMBERS, LAYERS, UNITS, BATCH = 5, 4, 200, 256


def build(state_dim: int, action_dim: int) -> mbrl.models.OneDTransitionRewardModel:
    network = mbrl.models.GaussianMLP(
        in_size=state_dim + action_dim, out_size=state_dim, device="cpu", num_layers=LAYERS, ensemble_size=MEMBERS,
        hid_size=UNITS, deterministic=False, propagation_method=None, learn_logvar_bounds=True,
        activation_fn_cfg={"_target_": "torch.nn.SiLU"},
    )
    return mbrl.models.OneDTransitionRewardModel(network, target_is_delta=True, normalize=True,
                                                 normalize_double_precision=True, learned_rewards=False,
                                                 num_elites=MEMBERS)


def replay_buffer(data: dict, parts: list[str], seed: int) -> ReplayBuffer:
    states = np.concatenate([data[f"{part}_states"] for part in parts])
    actions = np.concatenate([data[f"{part}_actions"] for part in parts])
    next_states = np.concatenate([data[f"{part}_next_states"] for part in parts])
    buffer = ReplayBuffer(len(states), (states.shape[1],), (actions.shape[1],), rng=np.random.default_rng(seed))
    zeros = np.zeros(len(states), bool)
    buffer.add_batch(states, actions, next_states, np.zeros(len(states), np.float32), zeros, zeros)
    return buffer


def test_nll(model: mbrl.models.OneDTransitionRewardModel, data: dict) -> float:
    """Mean over members, rows and dimensions of the Gaussian NLL of the test next states (raw units)."""
    with torch.no_grad():
        inputs = model._get_model_input(data["test_states"], data["test_actions"])
        mean, logvar = model.model.forward(inputs, use_propagation=False)
        delta = torch.as_tensor(data["test_next_states"] - data["test_states"])
        nll = 0.5 * ((delta - mean).square() * torch.exp(-logvar) + logvar + math.log(2 * math.pi))
    return nll.mean().item()


def throughput(data: dict, epochs: int, repeats: int) -> dict:
    """Transitions per second of ModelTrainer.train over ``epochs`` epochs of the d0 data, best of ``repeats``."""
    buffer = replay_buffer(data, ["d0"], seed=0)
    model = build(data["d0_states"].shape[1], data["d0_actions"].shape[1])
    model.update_normalizer(buffer.get_all())
    train_iterator, _ = mbrl.util.common.get_basic_buffer_iterators(buffer, BATCH, 0.0, ensemble_size=MEMBERS)
    validation = TransitionIterator(buffer.get_all()[:BATCH], BATCH)  # one batch: its cost is negligible
    trainer = mbrl.models.ModelTrainer(model, optim_lr=1e-3, weight_decay=5e-5)
    trainer.train(train_iterator, dataset_val=validation, num_epochs=1, silent=True)  # warm-up, not timed
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        trainer.train(train_iterator, dataset_val=validation, num_epochs=epochs, patience=10**6, silent=True)
        rates.append(epochs * train_iterator.num_stored / (time.perf_counter() - start))
    return {"transitions_per_s": max(rates), "rates": rates, "train_transitions": train_iterator.num_stored}


class CurveRecorder:
    """Records (seconds, test NLL) after each epoch, on a clock that leaves out the evaluations themselves."""

    def __init__(self, evaluate: Callable[[], float]):
        self.evaluate, self.curve, self.excluded = evaluate, [], 0.0
        self.start = time.perf_counter()

    def __call__(self, *_: object) -> bool:
        paused = time.perf_counter()
        self.curve.append((paused - self.start - self.excluded, self.evaluate()))
        self.excluded += time.perf_counter() - paused
        return False  # never stops training

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.excluded


def retrain(data: dict, epochs: int, patience: int, learning_rate: float, weight_decay: float, seed: int) -> dict:
    """Trains on d0, then on d0 + d1 continuing the same model (mbrl-lib's PETS loop).

    Each round's wall time excludes the test evaluations made after every epoch to record the test NLL curve
    of the current weights: ``<round>_curve`` lists (seconds into the round, test NLL).
    """
    torch.manual_seed(seed)
    model = build(data["d0_states"].shape[1], data["d0_actions"].shape[1])
    trainer = mbrl.models.ModelTrainer(model, optim_lr=learning_rate, weight_decay=weight_decay)
    result = {}
    for round_name, parts in (("first", ["d0"]), ("second", ["d0", "d1"])):
        record = CurveRecorder(lambda: test_nll(model, data))
        buffer = replay_buffer(data, parts, seed=seed * 10 + len(parts))
        train_iterator, validation_iterator = mbrl.util.common.get_basic_buffer_iterators(
            buffer, BATCH, 0.1, ensemble_size=MEMBERS, shuffle_each_epoch=True)
        model.update_normalizer(buffer.get_all())
        record()
        losses, _ = trainer.train(train_iterator, dataset_val=validation_iterator, num_epochs=epochs,
                                  patience=patience, improvement_threshold=0.01, callback=record, silent=True)
        result[f"{round_name}_seconds"] = record.elapsed()
        result[f"{round_name}_epochs"] = len(losses)
        result[f"{round_name}_test_nll"] = test_nll(model, data)
        result[f"{round_name}_curve"] = record.curve
    return result


def main() -> None:
    torch.set_num_threads(int(os.environ.get("PEER_THREADS", "1")))
    mode, path = sys.argv[1], sys.argv[2]
    with np.load(path) as archive:
        data = {name: archive[name] for name in archive.files}
    if mode == "throughput":
        output = throughput(data, int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "retrain":
        output = retrain(data, int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]),
                         int(sys.argv[7]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(output))


if __name__ == "__main__":
    main()
