"""The learner's training rounds on the CPU and on a GPU, in one run: is a GPU worth it for the learner?

    .venv/bin/python bench/bench_learner_device.py [--config shadow_hand_cube] [--transitions 34000]
                                                   [--epochs 5] [--threads 2] [--repeats 3]

A config's model and trainer (its ``dynamics_learner`` section, as ``dynamics_learner`` and ``learner.launch.py``
build them) train for exactly ``--epochs`` epochs (one round, no early stopping, no annealing) on
``--transitions`` synthetic transitions of the task's sizes (random states and actions, unit quaternions where the
model reads quaternions: a round's speed does not depend on what the data are; 34 000 are about the Shadow hand's
hour at the shipped 0.1 s), on the CPU with ``--threads`` torch threads and, where CUDA is available, on the GPU.
Prints transitions per second per epoch on each (the best of ``--repeats`` rounds, each from a fresh model) and
the GPU's ratio to the CPU; the time one of the loop's warm rounds (``warm_epochs``, after every hand episode)
takes on each at that data size follows from them.
"""

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, set_threads

from mbrl_ros.data.transitions import TransitionBatch
from mbrl_ros.learning import model_factory
from mbrl_ros.models import ModelTrainer, TrainerConfig
from mbrl_ros.parameter_files import node_parameters, node_task, read_parameter_file
from mbrl_ros.settings import dataclass_from_dict
from mbrl_ros.tasks import Task


def learner_section(config_name: str) -> tuple[Task, dict, TrainerConfig]:
    """The task, the ``model`` section and the trainer settings of a config's learner: a file, or a name under this
    repository's config/ (so that it runs from a source tree, e.g. on a GPU machine where nothing is installed)."""
    path = Path(config_name)
    path = path if path.is_file() else REPO_ROOT / "config" / f"{config_name}.yaml"
    learner = node_parameters(read_parameter_file(path), "dynamics_learner")
    trainer = dataclass_from_dict(TrainerConfig, {**learner.get("trainer", {}), "progress": False}, "trainer")
    return node_task(learner), dict(learner["model"]), trainer


def synthetic_transitions(task: Task, model_section: dict, count: int, seed: int) -> TransitionBatch:
    """``count`` random transitions of ``task``'s sizes; the model's quaternion slices (4 dimensions from each of
    its ``quaternion_dims`` and ``cube_quaternion_dims``) of unit length."""
    rng = np.random.default_rng(seed)
    states = rng.normal(size=(count, task.state_dim)).astype(np.float32)
    next_states = states + 0.05 * rng.normal(size=states.shape).astype(np.float32)
    for first in [*model_section.get("quaternion_dims", []), *model_section.get("cube_quaternion_dims", [])]:
        for array in (states, next_states):
            array[:, first:first + 4] /= np.linalg.norm(array[:, first:first + 4], axis=1, keepdims=True)
    actions = rng.uniform(-1, 1, size=(count, task.action_dim)).astype(np.float32)
    return TransitionBatch(states, actions, next_states, np.zeros(count, np.float32), np.zeros(count, bool))


def transitions_per_second(task: Task, model_section: dict, trainer: TrainerConfig, data: TransitionBatch,
                           epochs: int, device: str, repeats: int) -> float:
    """Best of ``repeats`` rounds of exactly ``epochs`` epochs on ``device``, each from a fresh model."""
    config = dataclasses.replace(trainer, max_epochs=epochs, patience=epochs + 1, warm_epochs=None, device=device)
    factory, best = model_factory(task, model_section), 0.0
    train, validation = data[: len(data) * 9 // 10], data[len(data) * 9 // 10:]
    ModelTrainer(factory().to(device), dataclasses.replace(config, max_epochs=1)).fit(train[:2048], validation)
    for _ in range(repeats):
        result = ModelTrainer(factory().to(device), config).fit(train, validation)
        best = max(best, result.epochs * len(train) / result.wall_time)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="shadow_hand_cube", help="a config under config/, or a file")
    parser.add_argument("--transitions", type=int, default=34_000, help="synthetic transitions to train on")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of each timed round")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on the CPU")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per device (the best counts)")
    args = parser.parse_args()
    set_threads(args.threads)
    task, model_section, trainer = learner_section(args.config)
    data = synthetic_transitions(task, model_section, args.transitions, seed=0)
    print(f"{args.config}: model {model_section}, batch {trainer.batch_size}, {args.transitions} transitions "
          f"(states {task.state_dim}, actions {task.action_dim}), {args.epochs} epochs a round")
    rates = {}
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        rates[device] = transitions_per_second(task, model_section, trainer, data, args.epochs, device, args.repeats)
        name = f"cpu ({args.threads} threads)" if device == "cpu" else torch.cuda.get_device_name()
        warm_round = (trainer.warm_epochs or 0) * args.transitions * 0.9 / rates[device]
        print(f"  {name}: {rates[device]:,.0f} transitions/s per epoch; a warm round of {trainer.warm_epochs} "
              f"epochs on this data {warm_round:.1f} s", flush=True)
    if "cuda" in rates:
        print(f"GPU / CPU: {rates['cuda'] / rates['cpu']:.2f}x")
    else:
        print("no CUDA device here: the CPU figure alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
