"""POPLIN and model-based -> model-free benchmarks (issue 7), on the cartpole swing-up.

    .venv/bin/python bench/bench_poplin.py               # both parts, 3 seeds
    .venv/bin/python bench/bench_poplin.py --quick       # a short smoke run
    .venv/bin/python bench/bench_poplin.py --only poplin --seeds 0 1 2

POPLIN  Per-episode return of POPLIN-A-Init, POPLIN-A-Replan, POPLIN-P (sep, BC) and PETS-CEM at equal model
        evaluations per action (same population, iterations and horizon; POPLIN adds the policy's own rollout
        and the final plan's, about 1 %: the model steps actually spent are printed), on the analytic
        swing-up (mbrl_ros.planning.reference_systems.CartpoleSwingUp) with its true dynamics: the planners
        are compared, not the models. POPLIN's policy starts untrained and is distilled (behaviour cloning of
        the planned actions) after every episode. Printed: mean +- std over seeds of the return of each
        episode, and the ratio of each POPLIN variant's mean return (all episodes) to PETS-CEM's.
MBMF    Nagabandi et al. (2017): random data -> an MLP dynamics model -> random-shooting MPC on it (its rollouts
        extend the model's data once) -> behaviour cloning and DAgger into a 64 x 64 policy -> PPO fine-tuning;
        against PPO from scratch given the same number of environment steps in all. Curves (return against
        environment steps) go to CSV and PNG; printed: the return each reaches at the end, and the steps PPO
        from scratch needs to reach the fine-tuned policy's starting return.

Results (CSV, PNG) go to bench/results/poplin/ (git-ignored).
"""

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import gymnasium
import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import set_threads

from mbrl_ros.data.replay_buffer import ReplayBuffer
from mbrl_ros.models import DeterministicMLP, ModelTrainer, TrainerConfig
from mbrl_ros.planning import MPC
from mbrl_ros.planning.reference_systems import CartpoleSwingUp
from mbrl_ros.policies import PPO, DaggerDataset, ImitationConfig, PolicyNetwork, PPOConfig, dagger
from mbrl_ros.runs import CsvLog

RESULTS = Path(__file__).resolve().parent / "results" / "poplin"
TASK = CartpoleSwingUp()
PLANNERS = {
    "pets_cem": {"optimizer": "cem"},
    "poplin_a_init": {"optimizer": "poplin_a_init"},
    "poplin_a_replan": {"optimizer": "poplin_a_replan"},
    "poplin_p_sep": {"optimizer": "poplin_p", "optimizer_params": {"perturbation": "sep"}},
}
POLICY_SIZE = {"hidden_units": 32}  # of the POPLIN policies (POPLIN-P's search space: 1.2 k parameters)


class SwingUpEnv(gymnasium.Env):
    """The analytic cartpole swing-up as a Gymnasium environment (observation: the state (4,))."""

    observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)
    action_space = gymnasium.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def __init__(self, episode_steps: int = TASK.episode_steps):
        self.episode_steps = episode_steps

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        generator = torch.Generator().manual_seed(int(self.np_random.integers(2**31)))
        self._state, self._t = TASK.initial_states(1, generator)[0], 0
        return self._state.numpy().astype(np.float32), {}

    def step(self, action):
        action_t = torch.as_tensor(np.asarray(action, np.float32).reshape(1, 1)).clamp(-1.0, 1.0)
        next_state = TASK.step(self._state[None], action_t)[0]
        reward = float(TASK.reward(self._state[None], action_t, next_state[None])[0])
        self._state, self._t = next_state, self._t + 1
        return next_state.numpy().astype(np.float32), reward, False, self._t >= self.episode_steps, {}


def run_episode(env: SwingUpEnv, act, seed: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Return, states (T, 4) and actions (T, 1) of one episode of ``act`` (state (4,) -> action (1,))."""
    state, _ = env.reset(seed=seed)
    states, actions, total, done = [], [], 0.0, False
    while not done:
        action = np.asarray(act(state), np.float32).reshape(1)
        states.append(state)
        actions.append(action)
        state, reward, terminated, truncated, _ = env.step(action)
        total, done = total + reward, terminated or truncated
    return total, np.array(states), np.array(actions)


# ------------------------------------------------------------------------------------------------ POPLIN
def poplin_part(seeds: list[int], episodes: int, steps: int, population: int, iterations: int, horizon: int) -> None:
    print(f"POPLIN: return per episode on the cartpole swing-up (true dynamics), {len(seeds)} seed(s), "
          f"{episodes} episodes of {steps} steps, population {population} x {iterations} iterations, "
          f"horizon {horizon}")
    stem = f"poplin_returns_p{population}_i{iterations}"
    (RESULTS / f"{stem}.csv").unlink(missing_ok=True)  # CsvLog appends
    log = CsvLog(RESULTS / f"{stem}.csv", ("planner", "seed", "episode", "return", "model_steps", "seconds"))
    returns: dict[str, np.ndarray] = {}
    env = SwingUpEnv(steps)
    for name, settings in PLANNERS.items():
        returns[name] = np.zeros((len(seeds), episodes))
        model_steps = []
        for s, seed in enumerate(seeds):
            torch.manual_seed(seed)
            params = {"population": population, "iterations": iterations, **settings.get("optimizer_params", {})}
            if name != "pets_cem":
                params.update(POLICY_SIZE)
            mpc = MPC(TASK.model(), TASK.reward, TASK.action_low, TASK.action_high, horizon=horizon,
                      propagation="deterministic", optimizer=settings["optimizer"], optimizer_params=params, seed=seed)
            for episode in tqdm(range(episodes), desc=f"{name} seed {seed}", unit="episode", leave=False):
                mpc.reset(seed * 1000 + episode)
                spent, start = 0, time.perf_counter()

                def act(state, mpc=mpc):
                    nonlocal spent
                    action = mpc.act(torch.as_tensor(state))
                    spent += mpc.last_stats.model_steps
                    return action.numpy()

                total, *_ = run_episode(env, act, seed=10_000 * seed + episode)
                if mpc.policy is not None:
                    mpc.optimizer.distill()
                returns[name][s, episode] = total
                model_steps.append(spent / steps)
                log.write(planner=name, seed=seed, episode=episode, **{"return": total}, model_steps=spent,
                          seconds=time.perf_counter() - start)
        per_episode = " ".join(f"{m:.1f}+-{sd:.1f}" for m, sd in zip(returns[name].mean(0), returns[name].std(0),
                                                                        strict=True))
        print(f"  {name:16s} model steps/action {statistics.mean(model_steps):8.0f}   return per episode: "
              f"{per_episode}", flush=True)
    log.close()
    reference = returns["pets_cem"].mean()
    for name in PLANNERS:
        if name != "pets_cem":
            print(f"  {name}: mean return {returns[name].mean():.2f}, PETS-CEM {reference:.2f}, ratio "
                  f"{returns[name].mean() / reference:.3f}")
    plot_poplin(returns, RESULTS / f"{stem}.png", f"population {population} x {iterations} iterations")


def plot_poplin(returns: dict[str, np.ndarray], path: Path, budget: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axis = pyplot.subplots(figsize=(7, 4))
    for name, values in returns.items():
        episodes = np.arange(values.shape[1])
        axis.errorbar(episodes, values.mean(0), yerr=values.std(0), marker="o", capsize=3, label=name)
    axis.set_xlabel("episode")
    axis.set_ylabel("return")
    axis.set_title(f"cartpole swing-up, equal model evaluations ({budget})")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


# ------------------------------------------------------------------------------------------------ MB -> MF
def train_model(buffer: ReplayBuffer, model: DeterministicMLP | None, seed: int) -> DeterministicMLP:
    model = model or DeterministicMLP(4, 1, hidden_layers=2, hidden_units=200)
    ModelTrainer(model, TrainerConfig(max_epochs=60, patience=10, seed=seed, progress=False)).fit_buffer(buffer)
    return model


def mbmf_seed(seed: int, random_episodes: int, mpc_episodes: int, dagger_iterations: int, ppo_steps: int,
              population: int, horizon: int) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """One seed of MB->MF and of PPO from scratch: their curves, (environment steps, mean return) points."""
    env = SwingUpEnv()
    for name in (f"mbmf_seed{seed}.csv", f"scratch_seed{seed}.csv"):
        (RESULTS / name).unlink(missing_ok=True)  # PPO's CsvLog appends
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    buffer, env_steps, episode = ReplayBuffer(4, 1), 0, 0

    def record(states: np.ndarray, actions: np.ndarray) -> None:
        next_states = np.array([TASK.step(torch.as_tensor(s)[None], torch.as_tensor(a)[None])[0].numpy()
                                for s, a in zip(states, actions, strict=True)])
        buffer.add(states, actions, next_states, np.zeros(len(states)), np.zeros(len(states), bool))

    for _ in range(random_episodes):
        _, states, actions = run_episode(env, lambda s: rng.uniform(-1, 1, 1), seed=1000 * seed + episode)
        record(states, actions)
        env_steps, episode = env_steps + len(states), episode + 1
    model = train_model(buffer, None, seed)
    mpc = MPC(model, TASK.reward, TASK.action_low, TASK.action_high, horizon=horizon,
              optimizer="random_shooting", optimizer_params={"population": population},
              propagation="deterministic", seed=seed)
    dataset, mpc_returns = DaggerDataset(), []
    for index in tqdm(range(mpc_episodes), desc=f"MPC seed {seed}", unit="episode", leave=False):
        mpc.reset(seed * 1000 + index)
        total, states, actions = run_episode(env, lambda s: mpc.act(torch.as_tensor(s)).numpy(),
                                             seed=1000 * seed + episode)
        record(states, actions)
        dataset.add(states, actions)
        mpc_returns.append(total)
        env_steps, episode = env_steps + len(states), episode + 1
        if index == 0:
            model = train_model(buffer, model, seed)  # Nagabandi: aggregate the MPC's data, retrain
            mpc.set_model(model)

    def visit(policy: PolicyNetwork) -> np.ndarray:
        nonlocal env_steps, episode
        _, states, _ = run_episode(env, policy.act, seed=1000 * seed + episode)
        env_steps, episode = env_steps + len(states), episode + 1
        return states

    def expert(states: np.ndarray) -> np.ndarray:
        labeller = MPC(model, TASK.reward, TASK.action_low, TASK.action_high, horizon=horizon,
                       optimizer="random_shooting", optimizer_params={"population": population},
                       propagation="deterministic", seed=seed)
        return labeller.plan(torch.as_tensor(states))[:, 0].numpy()

    policy = PolicyNetwork(4, 1, [-1.0], [1.0], hidden_layers=2, hidden_units=64)
    dagger(policy, dataset, visit, expert, dagger_iterations, ImitationConfig(epochs=100, seed=seed))
    imitated = np.mean([run_episode(env, policy.act, seed=90_000 + k)[0] for k in range(5)])
    print(f"  seed {seed}: MPC return {np.mean(mpc_returns):.1f}, imitated policy {imitated:.1f}, "
          f"{env_steps} environment steps before PPO", flush=True)
    fine_tune = PPO(policy, SwingUpEnv(), PPOConfig(seed=seed, initial_std=0.2),
                    csv_path=RESULTS / f"mbmf_seed{seed}.csv")
    tuned = fine_tune.train(ppo_steps, progress=True)
    mbmf = [(env_steps, imitated)] + [(env_steps + r["environment_steps"], r["mean_return"]) for r in tuned]
    torch.manual_seed(seed)
    scratch = PPO(PolicyNetwork(4, 1, [-1.0], [1.0]), SwingUpEnv(), PPOConfig(seed=seed),
                  csv_path=RESULTS / f"scratch_seed{seed}.csv")
    return mbmf, [(r["environment_steps"], r["mean_return"]) for r in scratch.train(env_steps + ppo_steps,
                                                                                      progress=True)]


def mbmf_part(seeds: list[int], random_episodes: int, mpc_episodes: int, dagger_iterations: int,
              ppo_steps: int, population: int, horizon: int) -> None:
    print(f"MBMF: MB->MF (random-shooting MPC on an MLP, DAgger into 64 x 64, PPO) against PPO from scratch, "
          f"{len(seeds)} seed(s)")
    curves = {"mbmf": [], "scratch": []}
    for seed in seeds:
        mbmf, scratch = mbmf_seed(seed, random_episodes, mpc_episodes, dagger_iterations, ppo_steps, population,
                                  horizon)
        curves["mbmf"].append(mbmf)
        curves["scratch"].append(scratch)
    report_mbmf(curves)


def report_mbmf(curves: dict[str, list[list[tuple[int, float]]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axis = pyplot.subplots(figsize=(7, 4))
    for (name, runs), color in zip(curves.items(), ("tab:blue", "tab:orange"), strict=True):
        for index, run in enumerate(runs):
            steps, values = zip(*run, strict=True)
            axis.plot(steps, values, color=color, alpha=0.8, label=name if index == 0 else None)
    axis.set_xlabel("environment steps")
    axis.set_ylabel("mean episode return")
    axis.set_title("cartpole swing-up: MB->MF fine-tuning vs PPO from scratch")
    axis.legend()
    figure.tight_layout()
    figure.savefig(RESULTS / "mbmf_curves.png", dpi=100)
    pyplot.close(figure)
    for seed_index, (mbmf, scratch) in enumerate(zip(curves["mbmf"], curves["scratch"], strict=True)):
        start, end = mbmf[0][1], mbmf[-1][0]
        reached = next((steps for steps, value in scratch if value >= start), None)
        reach_text = f"after {reached} steps" if reached is not None else f"not within {scratch[-1][0]} steps"
        scratch_then = [point for point in scratch if point[0] <= end]
        print(f"  run {seed_index}: at {end} environment steps MB->MF {_last(mbmf):.1f}, PPO from scratch "
              f"{_last(scratch_then):.1f} (means of the last two updates); PPO from scratch reaches the imitated "
              f"policy's {start:.1f} {reach_text}")


def _last(curve: list[tuple[int, float]]) -> float:
    """Mean of the last two finite returns of a curve."""
    values = [value for _, value in curve if math.isfinite(value)][-2:]
    return float(np.mean(values)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--only", choices=("poplin", "mbmf"), help="run one part")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--episodes", type=int, default=5, help="POPLIN: episodes per planner and seed")
    parser.add_argument("--population", type=int, default=100, help="POPLIN: candidates per iteration (all planners)")
    parser.add_argument("--iterations", type=int, default=3, help="POPLIN: CEM iterations per plan (all planners)")
    parser.add_argument("--ppo-steps", type=int, default=100_000, help="MBMF: PPO fine-tuning steps")
    args = parser.parse_args()
    set_threads(args.threads)
    RESULTS.mkdir(parents=True, exist_ok=True)
    seeds = args.seeds[:1] if args.quick else args.seeds
    if args.only in (None, "poplin"):
        if args.quick:
            poplin_part(seeds, episodes=2, steps=40, population=30, iterations=2, horizon=10)
        else:
            poplin_part(seeds, episodes=args.episodes, steps=200, population=args.population,
                        iterations=args.iterations, horizon=20)
    if args.only in (None, "mbmf"):
        if args.quick:
            mbmf_part(seeds, random_episodes=2, mpc_episodes=1, dagger_iterations=1, ppo_steps=4096, population=50,
                      horizon=10)
        else:
            mbmf_part(seeds, random_episodes=10, mpc_episodes=4, dagger_iterations=3, ppo_steps=args.ppo_steps,
                      population=500, horizon=20)
    print(f"results in {RESULTS}")


if __name__ == "__main__":
    main()
