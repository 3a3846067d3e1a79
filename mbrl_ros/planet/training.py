"""PlaNet's training loop from pixels: seed episodes, then alternate model training and planner data collection.

Episodes are stored as they were seen: frames (T+1, 3, 64, 64) uint8, ``actions[t]`` the normalised action
taken before frame t (zero at t = 0) and ``rewards[t]`` the reward summed over the action repeat that led to
frame t (zero at t = 0), the layout :meth:`LatentDynamicsModel.loss` reads (time-major once batched).
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mbrl_ros.models.latent import IMAGE_SIZE, LatentDynamicsModel, LatentState, preprocess_images
from mbrl_ros.planet.planner import LatentPlanner, LatentPlannerConfig, PlanetAgent, scale_actions
from mbrl_ros.planet.tasks import PIXEL_CARTPOLE
from mbrl_ros.sim.episode import TaskSimulation

CURVE_COLUMNS = ("episode", "env_steps", "return", "policy", "image_loss", "reward_loss", "kl", "train_time_s",
                 "collect_time_s", "plan_time_ms")


class PixelEnv:
    """A task seen through its camera: normalised actions in [-1, 1], action repeat, 64 x 64 RGB frames.

    Args:
        task: task name (or ``package.module:Class``).
        action_repeat: control periods each action is held for; the reward is summed over them.
        seed: base seed of the episodes (episode k resets with ``seed + k``).
        task_options: passed to the task (e.g. ``episode_length`` in control periods).
    """

    def __init__(self, task: str = PIXEL_CARTPOLE, action_repeat: int = 2, seed: int = 0, **task_options: Any):
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be a positive integer, got {action_repeat}")
        self.simulation = TaskSimulation(task, seed=seed, **task_options)
        self.action_repeat = action_repeat
        self.control_periods = 0  # stepped so far, all episodes together
        self.lower, self.upper = self.simulation.task.action_bounds
        self._started = False

    @property
    def action_dim(self) -> int:
        return self.simulation.task.action_dim

    @property
    def decisions_per_episode(self) -> int:
        """Actions per episode: the task's episode length over the action repeat, rounded up."""
        return -(-self.simulation.task.episode_length // self.action_repeat)

    def reset(self) -> np.ndarray:
        """Starts the next episode; returns its first frame (3, 64, 64) uint8."""
        if self._started:
            self.simulation.reset()
        self._started = True
        return self.frame()

    def frame(self) -> np.ndarray:
        return np.ascontiguousarray(self.simulation.render(IMAGE_SIZE, IMAGE_SIZE).transpose(2, 0, 1))

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """Holds the normalised ``action`` (A,) for ``action_repeat`` periods -> (frame, summed reward, done)."""
        command = scale_actions(np.asarray(action, dtype=np.float64), self.lower, self.upper)
        total = 0.0
        for _ in range(self.action_repeat):
            if self.simulation.done:
                break
            total += self.simulation.step(command).reward
            self.control_periods += 1
        return self.frame(), total, self.simulation.done

    def close(self) -> None:
        self.simulation.close()


@dataclass
class Episode:
    """One episode: frames (T+1, 3, 64, 64) uint8, actions (T+1, A) float32, rewards (T+1,) float32."""

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray

    @property
    def episode_return(self) -> float:
        return float(self.rewards.sum())


def run_episode(env: PixelEnv, policy: Callable[[np.ndarray], np.ndarray]) -> Episode:
    """Plays one episode with ``policy(frame (3, 64, 64) uint8) -> normalised action (A,)``."""
    frames, actions, rewards = [env.reset()], [np.zeros(env.action_dim, np.float32)], [0.0]
    done = False
    while not done:
        action = np.clip(np.asarray(policy(frames[-1]), dtype=np.float32), -1.0, 1.0)
        frame, reward, done = env.step(action)
        frames.append(frame)
        actions.append(action)
        rewards.append(reward)
    return Episode(np.stack(frames), np.stack(actions), np.asarray(rewards, np.float32))


class EpisodeBuffer:
    """Episodes kept whole; training draws fixed-length chunks from them, uniformly over all chunk starts."""

    def __init__(self) -> None:
        self.episodes: list[Episode] = []

    def __len__(self) -> int:
        return len(self.episodes)

    @property
    def steps(self) -> int:
        """Actions taken in all episodes (decisions, not control periods)."""
        return sum(len(episode.actions) - 1 for episode in self.episodes)

    def add(self, episode: Episode) -> None:
        if not (len(episode.frames) == len(episode.actions) == len(episode.rewards) >= 2):
            raise ValueError("an episode needs frames, actions and rewards of equal length >= 2")
        self.episodes.append(episode)

    def sample(self, batch: int, length: int, generator: np.random.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """``batch`` chunks of ``length`` steps: frames (L, B, 3, 64, 64) uint8, actions (L, B, A), rewards (L, B).

        Raises:
            ValueError: no stored episode is ``length`` frames long.
        """
        starts = [len(episode.frames) - length + 1 for episode in self.episodes]
        weights = np.maximum(np.asarray(starts, dtype=float), 0.0)
        if weights.sum() == 0:
            raise ValueError(f"no episode holds a chunk of {length} frames")
        chosen = generator.choice(len(self.episodes), size=batch, p=weights / weights.sum())
        frames, actions, rewards = [], [], []
        for index in chosen:
            episode = self.episodes[index]
            start = int(generator.integers(starts[index]))
            frames.append(episode.frames[start: start + length])
            actions.append(episode.actions[start: start + length])
            rewards.append(episode.rewards[start: start + length])
        return (torch.from_numpy(np.stack(frames, axis=1)), torch.from_numpy(np.stack(actions, axis=1)),
                torch.from_numpy(np.stack(rewards, axis=1)))


@dataclass
class PlanetConfig:
    """Everything a PlaNet run needs (defaults: a CPU-sized run; :meth:`paper` gives the paper's sizes).

    Attributes:
        task: task name or ``package.module:Class``; cart-pole swing-up with a closer camera by default
            (:class:`~mbrl_ros.planet.tasks.CartpoleSwingUpPixels`, PlaNet's benchmark task).
        episode_length: control periods per episode (None: the task's, 200 for cartpole swing-up).
        action_repeat: control periods per action (cartpole here: 0.05 s periods, so 2 holds an action
            0.1 s, near the paper's 8 x 0.01 s).
        episodes: episodes collected with the planner after the seed episodes.
        seed_episodes: episodes of uniformly random actions first (paper: 5).
        train_steps: gradient steps before each collected episode (paper: 100).
        batch_size, chunk_length: sequence chunks per gradient step and their length (paper: 50, 50).
        learning_rate, adam_epsilon, gradient_clip: Adam and gradient-norm clipping (paper: 1e-3, 1e-4, 1000).
        exploration_noise: std of the Gaussian added to planned actions while collecting (paper: 0.3).
        model: :class:`LatentDynamicsModel` sizes (depth, deterministic, stochastic, hidden, free_nats).
        planner: the CEM settings.
        seed: seeds torch, the chunk sampler and the episodes.
    """

    task: str = PIXEL_CARTPOLE
    episode_length: int | None = None
    action_repeat: int = 2
    episodes: int = 20
    seed_episodes: int = 5
    train_steps: int = 50
    batch_size: int = 16
    chunk_length: int = 30
    learning_rate: float = 1e-3
    adam_epsilon: float = 1e-4
    gradient_clip: float = 1000.0
    exploration_noise: float = 0.3
    model: dict[str, Any] = field(default_factory=lambda: {"depth": 16, "deterministic": 100, "stochastic": 20,
                                                           "hidden": 100, "free_nats": 3.0})
    planner: LatentPlannerConfig = field(default_factory=lambda: LatentPlannerConfig(candidates=500, iterations=5,
                                                                                       top=50))
    seed: int = 0

    @classmethod
    def paper(cls, **overrides: Any) -> "PlanetConfig":
        """The paper's model, training and planner sizes (meant for a GPU)."""
        values: dict[str, Any] = {
            "train_steps": 100, "batch_size": 50, "chunk_length": 50, "episodes": 500,
            "model": {"depth": 32, "deterministic": 200, "stochastic": 30, "hidden": 200, "free_nats": 3.0},
            "planner": LatentPlannerConfig()}
        return cls(**{**values, **overrides})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class WorldModelLearner:
    """The world model, its optimizer and its episodes: what training needs, with no environment.

    Args:
        config: model sizes and training settings (``model``, ``batch_size``, ``chunk_length``, ...).
        action_dim: A.
        device: torch device.
    """

    def __init__(self, config: PlanetConfig, action_dim: int, device: str = "cpu"):
        self.config, self.device = config, torch.device(device)
        self.model = LatentDynamicsModel(action_dim, **config.model).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate, eps=config.adam_epsilon)
        self.buffer = EpisodeBuffer()
        self.rng = np.random.default_rng(config.seed)

    def train(self, steps: int) -> dict[str, float]:
        """``steps`` gradient steps on random chunks; returns the mean of the loss parts."""
        self.model.train()
        totals = {"image": 0.0, "reward": 0.0, "kl": 0.0}
        for _ in range(steps):
            frames, actions, rewards = self.buffer.sample(self.config.batch_size, self.config.chunk_length, self.rng)
            observations = preprocess_images(frames.to(self.device), noise=True)
            loss, parts = self.model.loss(observations, actions.to(self.device), rewards.to(self.device))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.gradient_clip)
            self.optimizer.step()
            for key in totals:
                totals[key] += parts[key] / steps
        self.model.eval()
        return totals


class PlanetTrainer:
    """Runs PlaNet on a pixel environment: :meth:`seed`, then :meth:`iteration` per collected episode.

    Args:
        config: the run's settings.
        env: the environment (built from ``config`` when None); closed by :meth:`close` only if built here.
        device: torch device of the model and planner.
    """

    def __init__(self, config: PlanetConfig, env: PixelEnv | None = None, device: str = "cpu"):
        self.config, self.device = config, torch.device(device)
        torch.manual_seed(config.seed)
        self._own_env = env is None
        self.env = env if env is not None else PixelEnv(config.task, config.action_repeat, seed=config.seed,
                                                               episode_length=config.episode_length)
        frames = self.env.decisions_per_episode + 1
        if not 2 <= config.chunk_length <= frames:
            self.close()
            raise ValueError(f"chunk_length must be in [2, {frames}] (frames per episode), got {config.chunk_length}")
        self.learner = WorldModelLearner(config, self.env.action_dim, device)
        self.model, self.buffer, self.rng = self.learner.model, self.learner.buffer, self.learner.rng
        self.planner = LatentPlanner(self.model, config.planner,
                                     torch.Generator(self.device).manual_seed(config.seed))
        self.agent = PlanetAgent(self.model, self.planner, config.exploration_noise,
                                 torch.Generator(self.device).manual_seed(config.seed + 1))
        self.plan_times: list[float] = []

    def seed(self) -> list[Episode]:
        """Collects the seed episodes with uniformly random actions."""
        episodes = []
        for _ in range(self.config.seed_episodes):
            episode = run_episode(self.env, lambda frame: self.rng.uniform(-1.0, 1.0, self.env.action_dim))
            self.buffer.add(episode)
            episodes.append(episode)
        return episodes

    def train(self, steps: int) -> dict[str, float]:
        """``steps`` gradient steps on random chunks; returns the mean of the loss parts."""
        return self.learner.train(steps)

    def collect(self, exploration: bool = True) -> Episode:
        """One episode with the planner (with exploration noise unless ``exploration`` is False), stored."""
        self.agent.exploration_noise = self.config.exploration_noise if exploration else 0.0
        self.agent.reset()

        def policy(frame: np.ndarray) -> np.ndarray:
            start = time.perf_counter()
            action = self.agent.act(torch.from_numpy(frame).to(self.device)).cpu().numpy()
            self.plan_times.append(time.perf_counter() - start)
            return action

        episode = run_episode(self.env, policy)
        if exploration:
            self.buffer.add(episode)
        return episode

    def iteration(self) -> dict[str, float]:
        """Trains ``train_steps`` steps, then collects an episode: the learning curve's row (without the index)."""
        start = time.perf_counter()
        losses = self.train(self.config.train_steps)
        trained = time.perf_counter()
        self.plan_times.clear()
        episode = self.collect()
        return {"env_steps": self.env.control_periods, "return": episode.episode_return,
                "policy": "planet", "image_loss": losses["image"], "reward_loss": losses["reward"],
                "kl": losses["kl"], "train_time_s": trained - start, "collect_time_s": time.perf_counter() - trained,
                "plan_time_ms": 1e3 * float(np.mean(self.plan_times))}

    @torch.no_grad()
    def predict_frames(self, episode: Episode, context: int = 5,
                       length: int = 15) -> tuple[np.ndarray, np.ndarray, int]:
        """Real and decoded frames of ``episode`` (each (L, 64, 64, 3) uint8) and the context actually used.

        The model filters the first ``context`` frames (reconstructions), then imagines the rest from the
        actions taken (predictions); ``length`` frames in all (both shortened to fit a short episode).
        """
        length = min(length, len(episode.frames))
        context = max(1, min(context, length - 1))
        observations = preprocess_images(torch.from_numpy(episode.frames[:length, None]).to(self.device))
        actions = torch.from_numpy(episode.actions[:length, None]).to(self.device)
        posteriors, _ = self.model.rssm.observe(self.model.encode(observations[:context]), actions[:context],
                                                self.model.rssm.initial(1, self.device))
        last = LatentState(*(part[-1] for part in posteriors))
        imagined = self.model.rssm.imagine(last, actions[context:], sample=False)
        decoded = torch.cat([self.model.decode(posteriors), self.model.decode(imagined)])

        def to_images(floats: Tensor) -> np.ndarray:
            pixels = ((floats[:, 0] + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
            return pixels.permute(0, 2, 3, 1).cpu().numpy()

        return to_images(observations), to_images(decoded), context

    def close(self) -> None:
        if self._own_env:
            self.env.close()


def plot_frames(real: np.ndarray, decoded: np.ndarray, context: int, path: Path) -> Path:
    """Draws real frames over decoded ones (reconstructed, then open-loop predicted after ``context``) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    count = len(real)
    figure, axes = pyplot.subplots(2, count, figsize=(1.1 * count, 2.6), squeeze=False)
    for t in range(count):
        for row, (images, label) in enumerate(((real, "real"), (decoded, "model"))):
            axes[row, t].imshow(images[t])
            axes[row, t].set_xticks([])
            axes[row, t].set_yticks([])
            if t == 0:
                axes[row, t].set_ylabel(label)
        axes[0, t].set_title(("filtered " if t < context else "predicted ") + str(t), fontsize=6)
    figure.suptitle(f"decoded vs real frames: reconstructions of {context} observed frames, then open-loop predictions",
                    fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path


def plot_curve(curve_csv: Path, path: Path) -> Path:
    """Return per episode against environment steps (the CSV of :data:`CURVE_COLUMNS`) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    from mbrl_ros.runs import read_csv

    curve = read_csv(curve_csv)
    figure, axis = pyplot.subplots(figsize=(7, 4))
    axis.plot(curve["env_steps"], curve["return"], "o-")
    axis.set_xlabel("environment steps (control periods)")
    axis.set_ylabel("episode return")
    axis.set_title("PlaNet learning curve (seed episodes: random actions)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path
