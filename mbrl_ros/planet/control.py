"""PlaNet's control loop, ROS-free: camera frames in, actuator commands out (the planet_controller node's core).

Every frame is checked; every ``action_repeat``-th frame (the frames the model was trained on) is folded into
the latent filter together with the command actually applied since the last one, and a new action is planned;
in between the command is held, as the action repeat of training holds it.
"""

import numpy as np
import torch

from mbrl_ros.models.latent import IMAGE_SIZE, LatentDynamicsModel
from mbrl_ros.planet.planner import PAPER_PLANNER, LatentPlanner, LatentPlannerConfig, PlanetAgent, scale_actions


def checked_frame(rgb: np.ndarray) -> torch.Tensor:
    """(64, 64, 3) uint8 RGB -> (3, 64, 64) uint8 tensor. Raises ValueError for any other shape or dtype."""
    if rgb.dtype != np.uint8 or rgb.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ValueError(f"PlaNet needs {IMAGE_SIZE}x{IMAGE_SIZE} RGB uint8 frames, got shape {rgb.shape} "
                         f"of {rgb.dtype}")
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


class PlanetControlLoop:
    """Turns a stream of frames into commands with a PlaNet model.

    Args:
        model: the world model (its actions are normalised to [-1, 1]).
        lower, upper: (A,) actuator command bounds the normalised actions map to.
        action_repeat: frames per decision (as in training).
        planner: CEM settings.
        seed: seeds the planner's random numbers.
    """

    def __init__(self, model: LatentDynamicsModel, lower: np.ndarray, upper: np.ndarray, action_repeat: int,
                 planner: LatentPlannerConfig = PAPER_PLANNER, seed: int = 0):
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be a positive integer, got {action_repeat}")
        self.lower, self.upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        if model.action_dim != self.lower.shape[0]:
            raise ValueError(f"the model takes {model.action_dim} actions, the task has {self.lower.shape[0]}")
        self.action_repeat, self.planner_config, self.seed = action_repeat, planner, seed
        self.set_model(model)

    def set_model(self, model: LatentDynamicsModel) -> None:
        """Uses ``model`` from now on; the episode's latent state starts over."""
        if model.action_dim != self.lower.shape[0]:
            raise ValueError(f"the model takes {model.action_dim} actions, the task has {self.lower.shape[0]}")
        self.model = model.eval()
        self.agent = PlanetAgent(model, LatentPlanner(model, self.planner_config,
                                                      torch.Generator().manual_seed(self.seed)))
        self.reset()

    def reset(self) -> None:
        """A new episode: forget the latent state; the next frame is planned for."""
        self.agent.reset()
        self.frames = 0
        self._command: np.ndarray | None = None

    @property
    def predicted_return(self) -> float:
        return self.agent.planner.predicted_return

    def step(self, rgb: np.ndarray, applied: np.ndarray | None) -> np.ndarray:
        """The command (A,) to apply after frame ``rgb`` (64, 64, 3) uint8.

        Args:
            rgb: the newest frame.
            applied: (A,) the command actually applied since the previous decision frame (after any safety
                filtering), None if unknown; the filter folds it in as the action that led to this frame.
        Raises:
            ValueError: a malformed frame (nothing changes then).
        """
        frame = checked_frame(rgb)
        decide = self.frames % self.action_repeat == 0 or self._command is None
        self.frames += 1
        if not decide:
            return self._command
        if applied is not None and self.frames > 1:
            span = self.upper - self.lower
            self.agent.filter.act(torch.as_tensor(2.0 * (np.asarray(applied) - self.lower) / span - 1.0))
        action = self.agent.act(frame).cpu().numpy()
        self._command = scale_actions(action, self.lower, self.upper)
        return self._command
