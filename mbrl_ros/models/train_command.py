"""``mbrl-ros train-model``: train a dynamics model offline on a persisted replay buffer."""

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train-model", help="train a dynamics model on a replay-buffer directory",
        description="Trains a probabilistic ensemble (PETS) or a deterministic MLP (Nagabandi et al.) on the "
                    "transitions of a replay-buffer directory and saves it (safetensors + JSON). With an existing "
                    "model in OUTPUT, continues training it (a warm round). Writes OUTPUT/training.csv (one row "
                    "per epoch) and OUTPUT/training.png.")
    parser.add_argument("buffer", type=Path, help="replay-buffer directory (as the dynamics learner writes it)")
    parser.add_argument("output", type=Path, help="model directory, created or continued")
    parser.add_argument("--kind", choices=["ensemble", "mlp"], default="ensemble", help="model kind for a new model")
    parser.add_argument("--ensemble-size", type=int, default=5, help="members of a new ensemble")
    parser.add_argument("--hidden-layers", type=int, help="hidden layers (default: 4 ensemble, 2 mlp)")
    parser.add_argument("--hidden-units", type=int, help="units per hidden layer (default: 200 ensemble, 500 mlp)")
    parser.add_argument("--activation", help="activation (default: silu ensemble, relu mlp)")
    parser.add_argument("--angle-dims", type=int, nargs="+", metavar="DIM",
                        help="state dimensions that are angles, seen as (sin, cos) by a new model")
    parser.add_argument("--invariant-dims", type=int, nargs="+", metavar="DIM",
                        help="state dimensions the dynamics do not depend on, not inputs of a new model")
    parser.add_argument("--quaternion-dims", type=int, nargs="+", metavar="DIM",
                        help="first dimension of each unit quaternion (w, x, y, z), a rotation to a new model")
    parser.add_argument("--cube-quaternion-dims", type=int, nargs="+", metavar="DIM",
                        help="those of --quaternion-dims that orient a cube, seen by a new model in the canonical "
                             "of the 24 orientations that put it in the same place")
    parser.add_argument("--nll-beta", type=float, metavar="BETA",
                        help="beta-NLL loss of a new ensemble, in [0, 1] (default 0: the plain Gaussian NLL)")
    parser.add_argument("--max-epochs", type=int, default=200, help="most epochs of the early-stopped phase")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on the CPU")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import torch

    from mbrl_ros.data import ReplayBuffer
    from mbrl_ros.models import (
        DeterministicMLP,
        ModelFormatError,
        ModelTrainer,
        ProbabilisticEnsemble,
        TrainerConfig,
        load_model,
        plot_training_curves,
        save_model,
    )

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    try:
        buffer = ReplayBuffer.open(args.buffer)
    except ValueError as error:
        print(f"error: {error}")
        return 2
    buffer.close()
    if len(buffer) == 0:
        print(f"error: {args.buffer} holds no transitions")
        return 2
    if (args.output / "model.json").exists():
        try:
            model = load_model(args.output)
        except ModelFormatError as error:
            print(f"error: cannot continue the model in {args.output}: {error}")
            return 2
        if (model.state_dim, model.action_dim) != (buffer.state_dim, buffer.action_dim):
            print(f"error: the model in {args.output} is for {model.state_dim} states and {model.action_dim} "
                  f"actions, the buffer holds {buffer.state_dim} and {buffer.action_dim}")
            return 2
    elif args.nll_beta is not None and args.kind != "ensemble":
        print("error: --nll-beta is a loss of the ensemble; the mlp trains on the MSE")
        return 2
    else:
        architecture = {key: value for key, value in (("hidden_layers", args.hidden_layers),
                                                      ("hidden_units", args.hidden_units),
                                                      ("activation", args.activation),
                                                      ("angle_dims", args.angle_dims),
                                                      ("invariant_dims", args.invariant_dims),
                                                      ("quaternion_dims", args.quaternion_dims),
                                                      ("cube_quaternion_dims", args.cube_quaternion_dims),
                                                      ("nll_beta", args.nll_beta)) if value is not None}
        try:
            model = (ProbabilisticEnsemble(buffer.state_dim, buffer.action_dim, args.ensemble_size, **architecture)
                     if args.kind == "ensemble" else DeterministicMLP(buffer.state_dim, buffer.action_dim,
                                                                      **architecture))
        except ValueError as error:
            print(f"error: {error}")
            return 2
    config = TrainerConfig(batch_size=args.batch_size, learning_rate=args.learning_rate, max_epochs=args.max_epochs,
                           patience=args.patience, validation_fraction=args.validation_fraction, seed=args.seed,
                           device=args.device)
    try:
        trainer = ModelTrainer(model, config, csv_path=args.output / "training.csv")
    except ValueError as error:
        print(f"error: {error}")
        return 2
    result = trainer.fit_buffer(buffer)
    save_model(model.cpu(), args.output, extra={"train_transitions": result.train_transitions,
                                                "epochs": result.epochs, "elites": result.elites,
                                                "best_validation_nll": result.best_validation_nll,
                                                "best_validation_mse": result.best_validation_mse})
    plot_training_curves(args.output / "training.csv", args.output / "training.png")
    print(f"trained {model.kind} on {result.train_transitions} transitions for {result.epochs} epochs "
          f"({'warm' if result.warm else 'full'} round, {result.wall_time:.1f} s); validation MSE per member: "
          f"{[round(value, 4) for value in result.best_validation_mse]}, NLL "
          f"{[round(value, 4) for value in result.best_validation_nll]}; saved to {args.output}")
    return 0
