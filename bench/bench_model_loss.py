"""The Shadow hand's learned model under each training loss: how much of the cube's motion it explains.

    .venv/bin/python bench/bench_model_loss.py --buffer RUN/learner/transitions   # a few minutes on 2 cores
    .venv/bin/python bench/bench_model_loss.py --quick                            # a smoke run

The transitions are a hand run's (`mbrl-ros up shadow_hand_cube`, `make demo`; default: the newest
`runs/shadow_hand_cube-*/learner/transitions`). The model and trainer are the config's (as shipped: 3 x 2 x 250
SiLU, the cube's orientation as a quaternion, the goal out of the inputs), trained once per loss and seed on the
first `--train-fraction` of the transitions (its own random tenth held out for early stopping), then scored on
the last `--test-fraction`, later data the model never saw:

- one-step relative MSE of the change `s' - s` (squared error over the change's own variance) for the cube's
  orientation, the cube's position and the hand's joint positions;
- the cube's orientation error (rad) after `--open-loop` steps predicted open loop from the recorded actions
  along each test episode, against the error of predicting no motion at all: the fraction explained is what
  the planner can see of a turn.

Both score each member's own prediction and average over the members, as the hand's planner does
(`propagation: members`: every member rolls out its own states and a candidate's return is the members' mean).

Each loss is the ensemble's beta-NLL (`nll_beta`, Seitzer et al. 2022): 0 is PETS's plain Gaussian NLL, 1
trains the means as PDDM's MSE does. Ratios against beta 0, measured in the same run.
"""

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, set_threads

from mbrl_ros.data import ReplayBuffer
from mbrl_ros.data.transitions import TransitionBatch
from mbrl_ros.models import ModelTrainer
from mbrl_ros.offline import learner_settings
from mbrl_ros.rotations import quaternion_angle


def newest_hand_buffer() -> Path | None:
    runs = sorted((REPO_ROOT / "runs").glob("shadow_hand_cube-*/learner/transitions"), key=lambda p: p.stat().st_mtime)
    return runs[-1] if runs else None


def chained_starts(batch: TransitionBatch, steps: int) -> np.ndarray:
    """Indices i whose next ``steps`` transitions follow each other within one episode."""
    links = np.convolve(batch.chained()[:-1].astype(int), np.ones(steps - 1, dtype=int), mode="valid")
    return np.flatnonzero(links == steps - 1)


def scores(model, test: TransitionBatch, layout, steps: int) -> dict[str, float]:
    """Each member's errors on ``test``, averaged over the members (see the module docstring)."""
    states, actions = torch.as_tensor(test.states), torch.as_tensor(test.actions)
    with torch.no_grad():
        change = model.predict_mean(states, actions) - states  # (E, N, S)
    true_change = torch.as_tensor(test.next_states) - states
    result = {}
    for name in ("object_orientation", "object_position", "hand_qpos"):
        part = layout[name]
        residual = (change[..., part] - true_change[:, part]).square().sum(dim=(1, 2))
        spread = (true_change[:, part] - true_change[:, part].mean(0)).square().sum()
        result[f"one-step {name}"] = (residual / spread).mean().item()
    starts = chained_starts(test, steps)
    x = states[starts].expand(model.ensemble_size, -1, -1)
    with torch.no_grad():
        for k in range(steps):
            x = model.predict_mean(x, actions[starts + k].expand(model.ensemble_size, -1, -1))
    part = layout["object_orientation"]
    truth = torch.as_tensor(test.next_states[starts + steps - 1, part])
    predicted = quaternion_angle(x[..., part], truth).mean().item()
    still = quaternion_angle(states[starts][:, part], truth).mean().item()
    result["open-loop orientation error (rad)"] = predicted
    result["open-loop fraction explained"] = 1 - predicted / still
    result["still error (rad)"] = still
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buffer", type=Path, default=None, help="a hand run's learner/transitions directory")
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "config" / "shadow_hand_cube.yaml")
    parser.add_argument("--betas", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--train-fraction", type=float, default=0.75)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--open-loop", type=int, default=7, help="steps predicted open loop (PDDM's horizon)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="the first 3000 transitions, one seed, 3 epochs")
    args = parser.parse_args()
    set_threads(args.threads)
    directory = args.buffer or newest_hand_buffer()
    if directory is None or not directory.exists():
        print("no Shadow hand transitions: run `make demo` (or `mbrl-ros up shadow_hand_cube`) first, or give "
              "--buffer RUN/learner/transitions")
        return 2
    settings = learner_settings(args.config)
    buffer = ReplayBuffer.open(directory)
    buffer.close()
    data = buffer.all()
    if buffer.state_dim != settings.task.state_dim:
        print(f"{directory} holds {buffer.state_dim}-D states, {settings.task.name} has {settings.task.state_dim}")
        return 2
    if args.quick:
        data, args.seeds = data[:3000], 1
    count = len(data)
    train_end, test_start = int(args.train_fraction * count), int((1 - args.test_fraction) * count)
    train, test = data[:train_end], data[test_start:]
    print(f"{directory}: {count} transitions; training on the first {train_end}, testing on the last "
          f"{count - test_start}", flush=True)
    results: dict[float, list[dict[str, float]]] = {}
    for beta in args.betas:
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            model = replace(settings, model={**settings.model, "nll_beta": beta}).new_model()
            trainer_config = replace(settings.trainer, seed=seed, progress=False,
                                     max_epochs=3 if args.quick else settings.trainer.max_epochs)
            order = np.random.default_rng(seed).permutation(train_end)
            fitting, held_out = order[train_end // 10:], order[:train_end // 10]
            start = time.perf_counter()
            ModelTrainer(model, trainer_config).fit(train[fitting], train[held_out])
            row = scores(model, test, settings.task.layout, args.open_loop)
            results.setdefault(beta, []).append(row)
            print(f"beta {beta:g} seed {seed} ({time.perf_counter() - start:.0f} s): "
                  + ", ".join(f"{name} {value:.3f}" for name, value in row.items()), flush=True)
    baseline = {name: np.mean([row[name] for row in results[args.betas[0]]]) for name in results[args.betas[0]][0]}
    for beta in args.betas[1:]:
        mean = {name: np.mean([row[name] for row in results[beta]]) for name in baseline}
        print(f"beta {beta:g} / beta {args.betas[0]:g}: " + ", ".join(
            f"{name} {mean[name]:.3f} / {baseline[name]:.3f} = {mean[name] / baseline[name]:.3f}"
            for name in baseline if name != "still error (rad)"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
