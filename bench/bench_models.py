"""Dynamics-model training against mbrl-lib 0.2.0 (GaussianMLP + ModelTrainer), same data, machine and threads.

    .venv/bin/python bench/bench_models.py            # the figures (a few minutes on 2 cores)
    .venv/bin/python bench/bench_models.py --quick    # a smoke run (well under a minute)

Needs the peer venv (``make peer``). Data: HalfCheetah-v5 (gymnasium, MuJoCo) under uniformly random actions,
17-dimensional states and 6-dimensional actions: a first batch of episodes (d0), new episodes arriving later
(d1) and held-out test episodes. The model on both sides: a PETS ensemble of 5 members, 4 hidden layers of 200
SiLU units, learned log-variance bounds, bootstrap per member, batch 256.

- P4a, training throughput (transitions per second over whole epochs of each library's own training call,
  validation on one batch): ours against mbrl-lib's (goal >= 1.2), and the FLOP/s it implies against the
  matmul roofline of the same layer shapes, forward + backward (goal >= 0.85), measured before the rounds and
  after each (the highest is used: a sample slowed by the host's other work must not lower the bound). Also
  printed: the bound for E separate matmuls batched as one (what an ensemble's ``bmm`` reaches), and that bound
  against the roofline: what a training step made of nothing but its ``bmm`` calls would read.
- P4b, new data to a good model: both libraries train on d0, then d1 arrives and each continues as it does in
  a PETS loop (mbrl-lib: its PETS example's ``train_model_and_save_model_and_data``: refit the normaliser, train
  ``--peer-epochs`` epochs keeping the best validation weights; ours: ``ModelTrainer.fit_buffer``). The wall
  time of that second round is compared (goal: mbrl-lib's >= 2x ours), provided our model's test NLL is at
  least as good as mbrl-lib's on the same held-out episodes.
"""

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import mlp_matmul_roofline, report, run_peer, seconds_per_call, set_threads

from mbrl_ros.data import ReplayBuffer, TransitionBatch
from mbrl_ros.models import ModelTrainer, ProbabilisticEnsemble, TrainerConfig

PEER_SCRIPT = Path(__file__).resolve().parent / "peer" / "peer_models.py"
MEMBERS, LAYERS, UNITS, BATCH = 5, 4, 200, 256


def collect_halfcheetah(episodes: int, steps: int, seed: int, action_scale: float = 1.0) -> TransitionBatch:
    """``episodes`` episodes of ``steps`` steps of HalfCheetah-v5 under actions uniform in +-``action_scale``."""
    import gymnasium
    import mujoco

    # gymnasium's HalfCheetah asset uses a deprecated MJCF attribute: MuJoCo would write the warning to a
    # MUJOCO_LOG.TXT in the working directory
    mujoco.set_mju_user_warning(lambda message: None)
    environment = gymnasium.make("HalfCheetah-v5")
    rng = np.random.default_rng(seed)
    states, actions, next_states = [], [], []
    for episode in range(episodes):
        state, _ = environment.reset(seed=seed * 1000 + episode)
        for _ in range(steps):
            action = rng.uniform(-action_scale, action_scale, environment.action_space.shape)
            next_state, _, terminated, truncated, _ = environment.step(action)
            states.append(state)
            actions.append(action)
            next_states.append(next_state)
            state = next_state
            if terminated or truncated:
                break
    environment.close()
    count = len(states)
    return TransitionBatch(np.asarray(states, np.float32), np.asarray(actions, np.float32),
                           np.asarray(next_states, np.float32), np.zeros(count, np.float32), np.zeros(count, bool))


def layer_shapes(state_dim: int, action_dim: int) -> list[tuple[int, int]]:
    widths = [state_dim + action_dim] + [UNITS] * LAYERS + [2 * state_dim]
    return list(zip(widths[:-1], widths[1:], strict=True))


def flops_per_transition(shapes: list[tuple[int, int]]) -> float:
    """Forward + backward matmul FLOPs of one transition through all members (backward counted as 2x forward)."""
    return 3 * MEMBERS * sum(2 * fan_in * fan_out for fan_in, fan_out in shapes)


def batched_matmul_bound(shapes: list[tuple[int, int]], repeats: int = 20) -> float:
    """FLOP/s of E separate (B, in) x (in, out) matmuls done as one bmm, forward + backward, on the same shapes."""
    weights = [torch.randn(MEMBERS, fan_in, fan_out) for fan_in, fan_out in shapes]
    inputs = [torch.randn(MEMBERS, BATCH, fan_in) for fan_in, _ in shapes]
    grads = [torch.randn(MEMBERS, BATCH, fan_out) for _, fan_out in shapes]

    def one_pass() -> None:
        for x, w, g in zip(inputs, weights, grads, strict=True):
            torch.bmm(x, w)
            torch.bmm(g, w.transpose(1, 2))
            torch.bmm(x.transpose(1, 2), g)

    return BATCH * flops_per_transition(shapes) / seconds_per_call(one_pass, repeats)


def non_matmul_seconds(model: ProbabilisticEnsemble, repeats: int = 50) -> float:
    """Seconds a training step of ``model`` at batch BATCH spends outside its matmuls, at the least: each layer's
    bias add and bias gradient, each hidden layer's SiLU forward and backward, the loss from the network's output
    and its gradient back to that output (the model's own ``training_loss``), and one fused Adam step over a copy
    of its parameters, each timed apart (the batch's gather and autograd's work on the layers are not counted)."""
    copy = ProbabilisticEnsemble(model.state_dim, model.action_dim, MEMBERS, LAYERS, UNITS, "silu")
    optimizer = torch.optim.Adam(copy.parameters(), lr=1e-4, fused=True)
    gradients = {parameter: torch.randn_like(parameter) * 1e-3 for parameter in copy.parameters()}
    widths = [fan_out for _, fan_out in layer_shapes(model.state_dim, model.action_dim)]
    outputs = [torch.randn(MEMBERS, BATCH, width) for width in widths]
    biases = [torch.randn(MEMBERS, 1, width) * 1e-4 for width in widths]  # added again at every call: stays small
    network_output = outputs[-1].clone().requires_grad_()
    targets = torch.randn(MEMBERS, BATCH, model.state_dim)
    copy.network = torch.nn.Identity()  # training_loss from the network's output on: the loss's own work

    def one_step() -> None:
        for index, (output, bias) in enumerate(zip(outputs, biases, strict=True)):
            output.add_(bias)
            output.sum(dim=1, keepdim=True)
            if index < len(widths) - 1:
                torch.ops.aten.silu_backward(output, functional.silu(output))
        copy.training_loss(network_output, targets).backward(inputs=[network_output])
        network_output.grad = None
        for parameter, gradient in gradients.items():
            parameter.grad = gradient
        optimizer.step()

    return seconds_per_call(one_step, repeats)


def our_throughput(trainer: ModelTrainer, data: TransitionBatch) -> float:
    """Transitions per second of one ModelTrainer.fit round on ``data`` (its epochs, validation on one batch)."""
    result = trainer.fit(data, data[:BATCH])
    return result.epochs * len(data) / result.wall_time


def test_nll(model: ProbabilisticEnsemble, test: TransitionBatch) -> float:
    """Mean over members, rows and dimensions of the Gaussian NLL of the test next states (raw units, nats)."""
    with torch.no_grad():
        mean, variance = model.predict(torch.from_numpy(test.states), torch.from_numpy(test.actions))
        error = (torch.from_numpy(test.next_states) - mean).square()
        return (0.5 * (error / variance + variance.log() + math.log(2 * math.pi))).mean().item()


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


def our_retrain(first: TransitionBatch, new: TransitionBatch, test: TransitionBatch, config: TrainerConfig,
                seed: int) -> dict:
    """Trains on ``first``, then continues on ``first`` + ``new``, as the peer's ``retrain`` does (same keys)."""
    torch.manual_seed(seed)
    model = ProbabilisticEnsemble(first.states.shape[1], first.actions.shape[1], MEMBERS, LAYERS, UNITS, "silu")
    trainer = ModelTrainer(model, config)
    buffer = ReplayBuffer(first.states.shape[1], first.actions.shape[1])
    result = {}
    for round_name, batch in (("first", first), ("second", new)):
        record = CurveRecorder(lambda: test_nll(model, test))
        buffer.add(batch.states, batch.actions, batch.next_states, batch.rewards, batch.dones)
        record()
        outcome = trainer.fit_buffer(buffer, on_epoch=record)
        result[f"{round_name}_seconds"] = record.elapsed()
        result[f"{round_name}_epochs"] = outcome.epochs
        result[f"{round_name}_test_nll"] = test_nll(model, test)
        result[f"{round_name}_curve"] = record.curve
    return result


def time_to_reach(curve: list[tuple[float, float]], target: float) -> float:
    """First time in a (seconds, test NLL) curve at which the NLL is at most ``target``; inf if never."""
    return next((seconds for seconds, nll in curve if nll <= target), math.inf)


def measure_throughput(first: TransitionBatch, data_path: Path, epochs: int, repeats: int, threads: int) -> bool:
    """P4a: ours and the peer's training throughput, interleaved ``repeats`` times (best of each counts)."""
    shapes = layer_shapes(first.states.shape[1], first.actions.shape[1])
    torch.manual_seed(0)
    model = ProbabilisticEnsemble(first.states.shape[1], first.actions.shape[1], MEMBERS, LAYERS, UNITS, "silu")
    config = TrainerConfig(batch_size=BATCH, max_epochs=epochs, patience=10**6, warm_epochs=None, progress=False)
    trainer = ModelTrainer(model, config)
    our_throughput(trainer, first[: 4 * BATCH])  # warm-up, not counted (as on the peer's side)
    # The bounds are sampled between the rounds and their best counts, as ours does: a sample slowed by another
    # process on the host would otherwise lower the bound and flatter the ratio (one such run read 0.94, not 0.6).
    roofline = [mlp_matmul_roofline(shapes, MEMBERS * BATCH, backward=True)]
    bmm_bound = [batched_matmul_bound(shapes)]
    rest = [non_matmul_seconds(model)]
    ours, peer = [], []
    for _ in range(repeats):
        ours.append(our_throughput(trainer, first))
        peer.append(run_peer(PEER_SCRIPT, "throughput", str(data_path), str(epochs), "1",
                             threads=threads)["transitions_per_s"])
        roofline.append(mlp_matmul_roofline(shapes, MEMBERS * BATCH, backward=True))
        bmm_bound.append(batched_matmul_bound(shapes))
        rest.append(non_matmul_seconds(model))
    print(f"     bound samples (GFLOP/s): matmul roofline {[round(r / 1e9) for r in roofline]}, "
          f"bmm {[round(b / 1e9) for b in bmm_bound]}", flush=True)
    roofline, bmm_bound = max(roofline), max(bmm_bound)
    print(f"     throughput samples (transitions/s): ours {[round(rate) for rate in ours]}, "
          f"mbrl-lib {[round(rate) for rate in peer]}", flush=True)
    ok = report("P4a training throughput", max(ours), max(peer), 1.2, "mbrl-lib", " transitions/s")
    ours_flops = max(ours) * flops_per_transition(shapes)
    ok &= report("P4a training FLOP/s vs matmul roofline", ours_flops, roofline, 0.85, "roofline", " FLOP/s")
    print(f"     (context: the same matmuls done as {MEMBERS} batched ones, bmm, reach {bmm_bound:.4g} FLOP/s "
          f"here; ours is {ours_flops / bmm_bound:.3f} of that. Those batched matmuls alone, with nothing else "
          f"in a step, would read {bmm_bound / roofline:.3f} against the roofline)", flush=True)
    matmul_seconds, rest_seconds = BATCH * flops_per_transition(shapes) / roofline, min(rest)
    print(f"     (a step's work outside the matmuls, at the least: {rest_seconds * 1e3:.2f} ms (bias adds and "
          f"gradients, SiLU forward and backward, the loss and its gradient, the fused Adam step; best of "
          f"{len(rest)}), against "
          f"{matmul_seconds * 1e3:.2f} ms of matmuls at the roofline: with every matmul at the roofline a step "
          f"would read at most {matmul_seconds / (matmul_seconds + rest_seconds):.3f})", flush=True)
    return ok


def measure_new_data(args: argparse.Namespace, steps: int, seed: int, directory: Path) -> tuple[float, bool]:
    """P4b for one seed: both sides train on d0, then on d0 + d1; returns the ratio of the second rounds' wall
    times (mbrl-lib / ours) and whether our model's test NLL is at least as good as mbrl-lib's."""
    first_scale = 0.5 if args.scenario == "shift" else 1.0
    first = collect_halfcheetah(10, steps, 100 * seed + 1, first_scale)
    new, test = collect_halfcheetah(2, steps, 100 * seed + 2), collect_halfcheetah(3, steps, 100 * seed + 3)
    data_path = directory / f"retrain-{seed}.npz"
    np.savez(data_path, **{f"{part}_{name}": array for part, batch in (("d0", first), ("d1", new), ("test", test))
                           for name, array in batch.arrays().items()})
    ours = our_retrain(first, new, test, TrainerConfig(batch_size=BATCH, seed=seed, progress=False), seed)
    peer = run_peer(PEER_SCRIPT, "retrain", str(data_path), str(args.peer_epochs), str(args.peer_patience),
                    str(args.peer_lr), str(args.peer_wd), str(seed), threads=args.threads)
    target = peer["second_test_nll"]
    for name, figures in (("ours", ours), ("mbrl-lib", peer)):
        print(f"     seed {seed} {name:8s}: d0 {figures['first_epochs']:3d} epochs {figures['first_seconds']:5.1f} s "
              f"test NLL {figures['first_test_nll']:.4g}; d0 + d1 {figures['second_epochs']:3d} epochs "
              f"{figures['second_seconds']:5.1f} s test NLL {figures['second_test_nll']:.4g}, mbrl-lib's final NLL "
              f"reached after {time_to_reach(figures['second_curve'], target):.2f} s", flush=True)
    return peer["second_seconds"] / ours["second_seconds"], ours["second_test_nll"] <= target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, few epochs, one seed: a smoke run")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, ours and the peer's")
    parser.add_argument("--repeats", type=int, default=3, help="throughput measurements per side (best counts)")
    parser.add_argument("--part", choices=["all", "p4a", "p4b"], default="all", help="which measurements to run")
    parser.add_argument("--seeds", type=int, default=3, help="P4b repetitions (the median ratio counts)")
    parser.add_argument("--scenario", choices=["stationary", "shift"], default="stationary",
                        help="P4b: d0 like d1 (stationary) or from gentler actions, d1 reaching new states (shift)")
    parser.add_argument("--peer-epochs", type=int, default=25, help="mbrl-lib PETS: num_epochs_train_model")
    parser.add_argument("--peer-patience", type=int, default=25, help="mbrl-lib PETS: patience")
    parser.add_argument("--peer-lr", type=float, default=7.5e-4, help="mbrl-lib PETS: model_lr")
    parser.add_argument("--peer-wd", type=float, default=3e-5, help="mbrl-lib PETS: model_wd")
    args = parser.parse_args()
    set_threads(args.threads)
    steps = 250 if args.quick else 1000
    epochs, repeats, seeds = (1, 1, 1) if args.quick else (3, args.repeats, args.seeds)
    print(f"HalfCheetah-v5 under random actions, episodes of {steps} steps; {args.threads} threads", flush=True)
    ok = True
    with tempfile.TemporaryDirectory() as directory:
        if args.part in ("all", "p4a"):
            first = collect_halfcheetah(10, steps, 0)
            data_path = Path(directory) / "throughput.npz"
            np.savez(data_path, **{f"d0_{name}": array for name, array in first.arrays().items()})
            ok = measure_throughput(first, data_path, epochs, repeats, args.threads)
        if args.part == "p4a":
            return 0 if ok else 1
        print(f"P4b ({args.scenario}): {10 * steps} transitions, then {2 * steps} new; test on 3 new episodes; "
              f"mbrl-lib trains {args.peer_epochs} epochs (patience {args.peer_patience}) per round", flush=True)
        outcomes = [measure_new_data(args, steps, seed, Path(directory)) for seed in range(seeds)]
    ratios = sorted(ratio for ratio, _ in outcomes)
    median = ratios[len(ratios) // 2]
    as_good = all(good for _, good in outcomes)
    verdict = "meets" if median >= 2.0 and as_good else "MISSES"
    print(f"P4b new data to a model as good as mbrl-lib's: wall-time ratio mbrl-lib / ours {median:.3f} (median of "
          f"{[round(ratio, 2) for ratio in ratios]}), our test NLL {'at least as good' if as_good else 'WORSE'} "
          f"in every run ({verdict} goal >= 2.0)", flush=True)
    return 0 if ok and verdict == "meets" else 1


if __name__ == "__main__":
    raise SystemExit(main())
