"""The Shadow hand planner's settings compared on one fixed learned model: paired episodes, no learning.

A learning run's success rate mixes the planner with the model it happened to learn, and two runs of one config
differ by as much as most settings tried (``bench/EXPERIMENTS.md``). Here the model is fixed: every variant plans
with the same saved model (the newest in a learner directory, copied for each variant so the original is
untouched; retraining switched off) on the same episode seeds, and so the same starts and goals, through the
embedded graph in lockstep. For each variant it prints the successes, the drops and the successes per goal turn
(``x+``: +90 degrees about x, ...); against the first variant, the config as given, the episodes it won and lost
seed by seed, with a two-sided sign test on them.

    .venv/bin/python bench/bench_planner_settings.py [--learner RUN/learner] [--config shadow_hand_cube] \\
        [--episodes 75] [--seed 2000] [--variant optimizer_params.gamma=20] \\
        [--variant horizon=20,disagreement_penalty=1] [--model MODEL_DIR ...]

A variant is comma-separated ``key=value`` settings of the controller's ``mpc`` section (dots go into nested
sections; values are read as YAML); without one (and without ``--model``), two MPPI iterations. ``--model DIR``
(repeatable) compares models instead: a saved model (``mbrl-ros train-model``'s output, e.g. trained afresh on the
learner's transitions) plans with the config as given in place of the learner's newest model. The learner
directory defaults to the newest hand run's (``mbrl-ros up shadow_hand_cube``, ``make demo``:
``runs/shadow_hand_cube-*/learner``). Run directories: ``--output``, by default ``bench/results/planner-settings/``
(git-ignored). Needs the environment of ``make test`` (DDS on loopback), as ``bench_loop.py``.
"""

import argparse
import shutil
import sys
from pathlib import Path

import yaml
from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_loop import RESULTS, goal_turn
from bench_model_loss import newest_hand_buffer

from mbrl_ros.learning import ModelStore
from mbrl_ros.models import load_model
from mbrl_ros.parameter_files import node_parameters, node_task, read_parameter_file
from mbrl_ros.resources import config_path
from mbrl_ros.runner import RunOptions, run
from mbrl_ros.sim.episode import TaskSimulation


def parse_variant(text: str) -> dict[str, object]:
    """``"a.b=1,c=x"`` -> ``{"a.b": 1, "c": "x"}`` (values read as YAML)."""
    settings = {}
    for item in text.split(","):
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise SystemExit(f"a variant is key=value[,key=value...], got {text!r}")
        settings[key.strip()] = yaml.safe_load(value)
    return settings


def variant_config(base: dict, settings: dict[str, object], seed: int) -> dict:
    """``base`` (a parameter file's content) with the ``mpc`` ``settings``, both nodes' seeds, and no retraining."""
    config = yaml.safe_load(yaml.safe_dump(base))
    for section in ("mujoco_bridge", "mpc_controller"):
        config.setdefault(section, {}).setdefault("ros__parameters", {})["seed"] = seed
    mpc = config["mpc_controller"]["ros__parameters"].setdefault("mpc", {})
    for key, value in settings.items():
        *path, last = key.split(".")
        section = mpc
        for part in path:
            section = section.setdefault(part, {})
        section[last] = value
    retrain = config["dynamics_learner"]["ros__parameters"].setdefault("retrain", {})
    retrain.update(on_episode_end=False, every_transitions=0)
    return config


def report(label: str, outcome: dict[int, tuple[bool, bool]], reference: dict[int, tuple[bool, bool]] | None,
           episode: TaskSimulation) -> None:
    """One variant's line: successes, drops, per goal; won and lost episodes against ``reference`` (if given)."""
    goals: dict[str, list[int]] = {}
    for seed, (success, _) in outcome.items():
        counts = goals.setdefault(goal_turn(episode, seed), [0, 0])
        counts[0] += success
        counts[1] += 1
    successes, drops = sum(s for s, _ in outcome.values()), sum(d for _, d in outcome.values())
    line = (f"{label}: {successes} of {len(outcome)} ({100 * successes / len(outcome):.1f} %), {drops} drops; "
            + " ".join(f"{goal} {won}/{count}" for goal, (won, count) in sorted(goals.items())))
    if reference is not None:
        common = outcome.keys() & reference.keys()
        won = sum(outcome[s][0] and not reference[s][0] for s in common)
        lost = sum(reference[s][0] and not outcome[s][0] for s in common)
        p_value = binomtest(won, won + lost).pvalue if won + lost else 1.0
        line += f"; against the config as given: won {won}, lost {lost} (sign test p = {p_value:.2f})"
    print(line, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learner", type=Path, help="a hand run's learner directory (default: the newest run's)")
    parser.add_argument("--config", default="shadow_hand_cube", help="a shipped config or a file")
    parser.add_argument("--episodes", type=int, default=75)
    parser.add_argument("--seed", type=int, default=2000, help="episode seeds start here (a run's own: 0 on)")
    parser.add_argument("--variant", action="append", help="key=value[,key=value...] of mpc (default, without "
                        "--model: optimizer_params.iterations=2)")
    parser.add_argument("--model", action="append", type=Path, default=[],
                        help="a saved model directory to plan with (the config as given) instead of the learner's")
    parser.add_argument("--output", type=Path, default=RESULTS / "planner-settings",
                        help="run directories (emptied first; default: bench/results/planner-settings)")
    args = parser.parse_args()
    if args.learner is None and (buffer := newest_hand_buffer()) is not None:
        args.learner = buffer.parent
    if args.learner is None or not (args.learner / "models").is_dir():
        print("no learned hand model: run `make demo` (or `mbrl-ros up shadow_hand_cube`) first, or give --learner "
              "RUN/learner (a run's --data-dir)")
        return 2
    path = config_path(args.config)
    base = yaml.safe_load(path.read_text())
    episode = TaskSimulation(node_task(node_parameters(read_parameter_file(path), "mpc_controller")))
    for model in args.model:
        load_model(model)  # a broken model fails here, before any episode runs
    default_variants = [] if args.model else ["optimizer_params.iterations=2"]
    variants = ([("as given", {}, None)]
                + [(text, parse_variant(text), None) for text in args.variant or default_variants]
                + [(f"model {model}", {}, model) for model in args.model])
    output = args.output
    if output.exists():
        shutil.rmtree(output)
    outcomes: list[dict[int, tuple[bool, bool]]] = []  # per variant: seed -> (success, dropped)
    for index, (label, settings, model) in enumerate(variants):
        directory = output / f"variant{index}"
        shutil.copytree(args.learner, directory / "learner")
        if model is not None:  # the newest version, so the learner publishes it
            store = ModelStore(directory / "learner" / "models")
            store.save(load_model(model), store.latest_version() + 1)
        config_file = directory / "config.yaml"
        config_file.write_text(yaml.safe_dump(variant_config(base, settings, args.seed), sort_keys=False))
        records = []
        run(RunOptions(config_file, episodes=args.episodes, mode="lockstep", run_dir=directory / "run",
                       data_dir=directory / "learner"), records.append)
        outcomes.append({r.seed: (bool(r.success), r.length < episode.task.episode_length) for r in records})
        report(label, outcomes[-1], outcomes[0] if index else None, episode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
