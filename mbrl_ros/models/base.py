"""The contract between learned dynamics models and the planners that roll them out."""

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn


class DynamicsModel(nn.Module, ABC):
    """A learned model of ``s' = f(s, a)``, possibly an ensemble of ``ensemble_size`` members.

    Planners only call :meth:`predict`; training code uses the subclasses' own losses.
    """

    state_dim: int
    action_dim: int
    ensemble_size: int

    @abstractmethod
    def predict(self, state: Tensor, action: Tensor) -> tuple[Tensor, Tensor | None]:
        """Next-state distribution of every member, in raw (unnormalised) units.

        Args:
            state: (B, S): every member evaluates all B rows; or (E, B, S): member e evaluates block e.
            action: (B, A) or (E, B, A), laid out as ``state``.

        Returns:
            mean: (E, B, S) predicted next states ``s + delta``.
            variance: (E, B, S) aleatoric variance of each member's prediction, or None for a deterministic
                model.
        """

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
