"""The planner's ceiling on a task: the shipped config's optimizer planning with the simulator as its model.

Every candidate action sequence is rolled out in MuJoCo itself (``mujoco.rollout``, one thread per core) from
the true current state, and scored with the task's own reward and termination on the task's states, so what
the closed loop scores here is what the learned model could reach at best with the same optimizer, horizon,
warm start and cold start (an episode's first plan at the config's `cold_start_iterations` and
`cold_start_population`). A learned model that scores far below it is the bottleneck, not the planner.

``--model DIR`` (a saved model, e.g. a learner's ``models/v000497``) then asks whether that model knows the
dynamics of the oracle's solution: from every state along the oracle's episodes it predicts what the next
``horizon`` executed actions gain over standing still (each member's mean prediction rolled out open loop, the
members' returns averaged, as the ``members`` propagation does; terminations are not applied) and prints how
that compares with what the simulation gave.

    .venv/bin/python bench/bench_oracle.py [--config shadow_hand_cube] [--episodes 5] [--population 200]
                                           [--iterations 2] [--horizon 16] [--goal-turns x+,y-] [--model DIR]

``--goal-turns`` (the hand) plays only the episodes whose goal is one of those turns (``x+``: +90 degrees about the
world's x axis; the task's ``goal_turn``), the next ``--episodes`` of them after ``--seed``, and the
summary gives the success rate per goal turn.
"""

import argparse
import dataclasses
import os
import time
from contextlib import nullcontext

# isort: off
import mbrl_ros.sim  # noqa: F401  (chooses MuJoCo's headless OpenGL backend: before mujoco is imported)
# isort: on
import mujoco
import numpy as np
import torch
from mujoco import rollout

from mbrl_ros.models import DynamicsModel, load_model
from mbrl_ros.parameter_files import node_parameters, node_task, read_parameter_file
from mbrl_ros.planning import MPCConfig
from mbrl_ros.planning.mpc import cold_start
from mbrl_ros.planning.registry import make_optimizer
from mbrl_ros.resources import config_path
from mbrl_ros.sim.episode import TaskSimulation
from mbrl_ros.tasks.base import Task
from mbrl_ros.tasks.layout import JointPositions

FULL_PHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS


class SimulatorObjective:
    """Returns (N,) of action sequences (N, H, A) from the simulation's current state, with the true dynamics."""

    def __init__(self, episode: TaskSimulation, threads: int):
        self.episode, self.sim, self.task = episode, episode.sim, episode.task
        self.model = self.sim.model
        self.datas = [mujoco.MjData(self.model) for _ in range(threads)]
        self.scratch = mujoco.MjData(self.model)  # where rolled-out states are read back as task states
        self.size = mujoco.mj_stateSize(self.model, FULL_PHYSICS)
        self.joint_columns = self._joint_columns()

    def _joint_columns(self) -> np.ndarray | None:
        """Where each dimension of the task's state sits in a physics state (S,), when the state is joint
        positions and velocities only (the cart-pole's), so that rolled-out states are read in one step;
        None when the state reads body poses or twists, which need the model's kinematics per state."""
        layout = self.episode.layout
        if layout.pose_bodies or layout.twist_bodies:
            return None
        qpos, qvel = 1, 1 + self.model.nq  # the physics state starts with the time, then qpos and qvel
        columns = []
        for field in layout.fields:
            for name in field.joints:
                joint = self.model.joint(name)
                columns.append(qpos + int(joint.qposadr[0]) if isinstance(field, JointPositions)
                               else qvel + int(joint.dofadr[0]))
        columns = np.array(columns)
        if not np.array_equal(self._physics_state()[columns], self.episode.state()):
            raise RuntimeError("the task's joint state does not read as the physics state's qpos and qvel")
        return columns

    def _physics_state(self) -> np.ndarray:
        state = np.empty(self.size)
        mujoco.mj_getState(self.model, self.sim.data, state, FULL_PHYSICS)
        return state

    def _task_state(self, physics_state: np.ndarray) -> np.ndarray:
        """The task's state vector (S,) of a physics state, read as the bridge reads the simulation."""
        live = self.sim.data
        mujoco.mj_setState(self.model, self.scratch, physics_state, FULL_PHYSICS)
        mujoco.mj_forward(self.model, self.scratch)
        self.sim.data = self.scratch
        try:
            return self.episode.state()
        finally:
            self.sim.data = live

    def step_rewards(self, sequences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rewards (N, H) and terminations (N, H) of action sequences (N, H, A) from the simulation's current state."""
        count, horizon, _ = sequences.shape
        frame_skip = self.sim.frame_skip
        actions = sequences.double().numpy()
        controls = np.clip(actions, self.sim.ctrl_low, self.sim.ctrl_high).repeat(frame_skip, axis=1)
        start = self._physics_state()
        physics, _ = rollout.rollout(self.model, self.datas, np.tile(start, (count, 1)), controls,
                                     persistent_pool=True)
        ends = physics[:, frame_skip - 1::frame_skip]  # (N, H, state size): after each control period
        states = np.empty((count, horizon + 1, self.task.state_dim))
        states[:, 0] = self.episode.state()
        if self.joint_columns is not None:
            states[:, 1:] = ends[..., self.joint_columns]
        else:
            # what the physics state leaves out (mocap goal markers, controls) as now
            mujoco.mj_copyData(self.scratch, self.model, self.sim.data)
            for n in range(count):
                for t in range(horizon):
                    states[n, t + 1] = self._task_state(ends[n, t])
        s, s_next = (torch.from_numpy(x).reshape(count * horizon, -1) for x in (states[:, :-1], states[:, 1:]))
        a = torch.from_numpy(actions).reshape(count * horizon, -1)
        with torch.no_grad():
            rewards = self.task.reward(s, a, s_next).reshape(count, horizon)
            terminated = self.task.terminated(s_next).reshape(count, horizon)
        return rewards, terminated

    def __call__(self, sequences: torch.Tensor) -> torch.Tensor:
        """Returns (N,) of action sequences (N, H, A): the rewards until the first termination, summed."""
        rewards, terminated = self.step_rewards(sequences)
        count = len(rewards)
        alive = torch.cat([torch.ones(count, 1, dtype=torch.bool), ~terminated.cumsum(1)[:, :-1].bool()], dim=1)
        return (rewards * alive).sum(1).float()


def window_gains(model: DynamicsModel, task: Task, states: np.ndarray, actions: np.ndarray,
                 horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and simulated gains (W,) of the executed actions over every window of ``horizon`` steps in one
    episode's states (T + 1, S) and actions (T, A): the window's return less the return had the state stayed
    at the window's first (what the actions achieve, not where the window starts). The model rolls each
    member's mean prediction out open loop from the window's first state; the members' returns are averaged."""
    s = torch.as_tensor(states, dtype=torch.float32)
    a = torch.as_tensor(actions, dtype=torch.float32)
    true_rewards = task.reward(s[:-1], a, s[1:])
    starts = torch.arange(len(a) - horizon + 1)
    predicted, true = torch.zeros(len(starts)), torch.zeros(len(starts))
    first = s[starts]
    current = first.expand(model.ensemble_size, -1, -1)
    with torch.no_grad():
        for t in range(horizon):
            step_actions = a[starts + t].expand(model.ensemble_size, -1, -1)
            mean, _ = model.predict(current, step_actions)
            predicted += task.reward(current, step_actions, mean).mean(0)
            true += true_rewards[starts + t]
            current = mean
        standing = sum(task.reward(first, a[starts + t], first) for t in range(horizon))
    return predicted - standing, true - standing


def episode_seeds(episode: TaskSimulation, seed: int, count: int, goal_turns: list[str] | None) -> list[int]:
    """The seeds of the next ``count`` episodes after ``seed`` (those whose goal is in ``goal_turns``, if given)."""
    if not goal_turns:
        return list(range(seed + 1, seed + 1 + count))
    if not hasattr(episode.task, "goal_turn"):
        raise SystemExit(f"--goal-turns: the task {episode.task.name} has no goal turns (the hand's cube has)")
    unknown = set(goal_turns) - {axis + sign for axis in "xyz" for sign in "+-"}
    if unknown:
        raise SystemExit(f"--goal-turns: {sorted(unknown)} are not goal turns (x+, x-, y+, y-, z+, z-)")
    seeds, candidate = [], seed
    while len(seeds) < count:
        candidate += 1
        if candidate > seed + 100 * count:
            raise SystemExit(f"--goal-turns {','.join(goal_turns)}: none of the task's episodes after seed {seed} "
                             "has such a goal (its goal_axes leave them out?)")
        if episode.task.goal_turn(episode.reset(candidate)) in goal_turns:
            seeds.append(candidate)
    return seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="shadow_hand_cube", help="a shipped config (its task and mpc section)")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--population", type=int, help="the optimizer's population (default: the config's)")
    parser.add_argument("--iterations", type=int, help="the optimizer's iterations per plan (default: the config's)")
    parser.add_argument("--horizon", type=int, help="the planning horizon in control steps (default: the config's)")
    parser.add_argument("--seed", type=int, default=1000,
                        help="the simulation's seed: the episodes are seeds SEED + 1, SEED + 2, ...")
    parser.add_argument("--goal-turns", type=lambda text: text.split(","),
                        help="comma-separated goal turns (the hand: x+, x-, y+, y-, z+, z-): play only episodes "
                             "whose goal is one of them")
    parser.add_argument("--model", help="a saved model directory to check on the oracle's episodes")
    args = parser.parse_args()
    controller = node_parameters(read_parameter_file(config_path(args.config)), "mpc_controller")
    mpc = MPCConfig.from_dict(controller.get("mpc") or {})  # the controller's defaults for what the file leaves out
    params = dict(mpc.optimizer_params)
    for name in ("population", "iterations"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    if args.horizon:
        mpc = dataclasses.replace(mpc, horizon=args.horizon)
    episode = TaskSimulation(node_task(controller), seed=args.seed)
    task = episode.task
    optimizer = make_optimizer(mpc.optimizer, *task.action_bounds, **params)
    objective = SimulatorObjective(episode, threads=os.cpu_count() or 1)
    generator = torch.Generator().manual_seed(args.seed)
    print(f"{args.config}: {mpc.optimizer} {params}, horizon {mpc.horizon}, the simulator as the model:")
    model = load_model(args.model) if args.model else None
    if model is not None and (model.state_dim, model.action_dim) != (task.state_dim, task.action_dim):
        raise SystemExit(f"{args.model} models {model.state_dim} states and {model.action_dim} actions; the task "
                         f"{task.name} has {task.state_dim} and {task.action_dim}")
    successes, goals, predicted, true = [], [], [], []
    for seed in episode_seeds(episode, args.seed, args.episodes, args.goal_turns):
        start = episode.reset(seed)
        goals.append(task.goal_turn(start) if args.goal_turns else "")
        states, actions = [start], []
        optimizer.reset()
        mean, started = optimizer.default_mean(mpc.horizon), time.monotonic()
        while not episode.done:
            with cold_start(optimizer, mpc) if not actions else nullcontext():  # the episode's first plan, as MPC's
                plan = optimizer.optimize(objective, mean, generator)
            actions.append(plan[0].double().numpy())
            episode.step(actions[-1])
            states.append(episode.state())
            optimizer.shift(1)
            mean = torch.cat([plan[1:], optimizer.default_mean(1)])  # the shifted warm start, as MPC.plan
        summary = episode.summary()
        successes.append(summary.success)
        goal = f" ({goals[-1]})" if goals[-1] else ""
        print(f"  episode seed {summary.seed}{goal}: return {summary.episode_return:.1f}, success {summary.success}, "
              f"{summary.length} steps ({time.monotonic() - started:.0f} s)", flush=True)
        if model is not None and len(actions) >= mpc.horizon:
            episode_predicted, episode_true = window_gains(model, task, np.array(states),
                                                             np.array(actions), mpc.horizon)
            predicted.append(episode_predicted)
            true.append(episode_true)
    print(f"  success rate {100 * np.mean(successes):.0f} % over {len(successes)} episodes")
    for goal in sorted(set(goals) - {""}):
        wins = [success for success, g in zip(successes, goals, strict=True) if g == goal]
        print(f"    {goal}: {sum(wins)} of {len(wins)}")
    if predicted:
        predicted, true = torch.cat(predicted), torch.cat(true)
        correlation = float(torch.corrcoef(torch.stack([predicted, true]))[0, 1])
        print(f"  {args.model} on the oracle's {len(true)} windows of {mpc.horizon} steps, the return the actions "
              f"gain over standing still: predicted {float(predicted.mean()):.3f} +- {float(predicted.std()):.3f}, "
              f"simulated {float(true.mean()):.3f} "
              f"+- {float(true.std()):.3f}, mean error {float((predicted - true).abs().mean()):.3f}, "
              f"correlation {correlation:.3f}")


if __name__ == "__main__":
    main()
