"""The planning benchmarks' peer side: mbrl-lib 0.2.0's CEM agent, run by bench/bench_planners.py.

Runs under .venv-peer (``make peer``); prints one JSON object as its last line.

    peer_planning.py throughput --actions 3      # P1a: TrajectoryOptimizerAgent + ModelEnv, PETS cartpole config
    peer_planning.py swingup --episodes 2 --steps 200 --seed 0   # P1b: the same CEM on the true cartpole

The agent is built as mbrl-lib's own examples build it, with hydra's ``_recursive_: False`` (its hydra pin
does not run on Python 3.11). The cartpole dynamics and reward of P1b are mbrl_ros's reference system
(plain torch), imported from this repository, so both sides plan on the very same functions.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import gymnasium as gym
import hydra
import mbrl.models
import mbrl.planning
import numpy as np
import omegaconf
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]

HORIZON, POPULATION, ITERATIONS, PARTICLES = 15, 350, 5, 20


class _Spaces:
    """What ModelEnv and the agent read from an environment: its spaces (cartpole: S=4, A=1)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)


def agent_config() -> omegaconf.DictConfig:
    """mbrl-lib's CEM agent at the PETS cartpole settings (mean of the elites returned, as PETS does)."""
    return omegaconf.OmegaConf.create({
        "_target_": "mbrl.planning.TrajectoryOptimizerAgent",
        "_recursive_": False,
        "action_lb": [-1.0],
        "action_ub": [1.0],
        "planning_horizon": HORIZON,
        "replan_freq": 1,
        "verbose": False,
        "optimizer_cfg": {
            "_target_": "mbrl.planning.CEMOptimizer",
            "num_iterations": ITERATIONS,
            "elite_ratio": 0.1,
            "population_size": POPULATION,
            "alpha": 0.1,
            "lower_bound": "???",
            "upper_bound": "???",
            "return_mean_elites": True,
            "device": "cpu",
            "clipped_normal": False,
        },
    })


def pets_reward(action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """mbrl-lib's reward signature (act, next_obs) -> (N, 1), PETS cartpole swing-up reward."""
    x, theta = next_obs[:, 0], next_obs[:, 1]
    tip_x, tip_y = x + 0.6 * torch.sin(theta), 0.6 * torch.cos(theta)
    reward = torch.exp(-(tip_x.square() + (tip_y - 0.6).square()) / 0.36) - 0.01 * action.square().sum(-1)
    return reward[:, None]


def no_termination(action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    return torch.zeros(next_obs.shape[0], 1, dtype=torch.bool, device=next_obs.device)


def throughput(actions: int) -> dict:
    """P1a: seconds per action of CEM through a 5 x 4 x 200 SiLU ensemble with TS-inf, 20 particles."""
    network = mbrl.models.GaussianMLP(
        in_size=5, out_size=4, device="cpu", num_layers=4, ensemble_size=5, hid_size=200, deterministic=False,
        propagation_method="fixed_model", learn_logvar_bounds=False,
        activation_fn_cfg={"_target_": "torch.nn.SiLU"},
    )
    model = mbrl.models.OneDTransitionRewardModel(network, target_is_delta=True, normalize=True, learned_rewards=False)
    generator = torch.Generator().manual_seed(0)
    model_env = mbrl.models.ModelEnv(_Spaces(), model, no_termination, pets_reward, generator=generator)
    agent = mbrl.planning.create_trajectory_optim_agent_for_model(model_env, agent_config(), PARTICLES)
    obs = np.array([0.0, np.pi, 0.0, 0.0], dtype=np.float32)
    agent.act(obs)  # warm-up
    times = []
    for _ in range(actions):
        start = time.perf_counter()
        agent.act(obs)
        times.append(time.perf_counter() - start)
    return {"seconds_per_action": float(np.median(times)),
            "model_steps_per_action": POPULATION * PARTICLES * HORIZON * ITERATIONS}


def swingup(episodes: int, steps: int, seed: int) -> dict:
    """P1b: closed-loop returns of the CEM agent planning on the true cartpole dynamics (one particle)."""
    sys.path.insert(0, str(REPO_ROOT))
    from mbrl_ros.planning.reference_systems import CartpoleSwingUp

    task = CartpoleSwingUp()
    torch.manual_seed(seed)  # mbrl-lib's CEM draws from torch's global generator
    returns, plan_seconds = [], []
    starts = task.initial_states(episodes, torch.Generator().manual_seed(seed))
    for start in starts:
        agent = hydra.utils.instantiate(agent_config())

        def evaluate(initial_state, sequences):
            state = torch.as_tensor(initial_state, dtype=torch.float32).expand(sequences.shape[0], -1)
            total = torch.zeros(sequences.shape[0])
            for t in range(sequences.shape[1]):
                next_state = task.step(state, sequences[:, t])
                total += task.reward(state, sequences[:, t], next_state)
                state = next_state
            return total

        agent.set_trajectory_eval_fn(evaluate)

        def controller(state, agent=agent):
            begin = time.perf_counter()
            action = agent.act(state.numpy())
            plan_seconds.append(time.perf_counter() - begin)
            return torch.as_tensor(action)

        returns.append(task.episode_return(start, controller, steps))
    return {"returns": returns, "evaluations_per_action": POPULATION * HORIZON * ITERATIONS,
            "seconds_per_action": float(np.median(plan_seconds))}


def main() -> None:
    torch.set_num_threads(int(os.environ.get("PEER_THREADS", "1")))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    p1a = sub.add_parser("throughput")
    p1a.add_argument("--actions", type=int, default=3)
    p1b = sub.add_parser("swingup")
    p1b.add_argument("--episodes", type=int, default=3)
    p1b.add_argument("--steps", type=int, default=200)
    p1b.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = throughput(args.actions) if args.bench == "throughput" else swingup(args.episodes, args.steps, args.seed)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
