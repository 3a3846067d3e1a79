"""Deterministic MLP dynamics model (Nagabandi et al. 2017, "Neural network dynamics for model-based deep
reinforcement learning with model-free fine-tuning")."""

import math
from typing import Any

import torch
from torch import Tensor

from mbrl_ros.models.base import LearnedDynamicsModel
from mbrl_ros.models.registry import register_model_kind

_MIN_MSE = 1e-6  # floor of the per-dimension error in the validation NLL (normalised units): a perfect fit
# of one dimension must not drive the score to -inf and hide the others


@register_model_kind
class DeterministicMLP(LearnedDynamicsModel):
    """``s' = s + f(s, a)``, ``f`` an MLP predicting the normalised state change, trained with MSE (eq. 3).

    A deterministic model: :meth:`predict` returns variance None and ensemble_size is 1.

    Args:
        state_dim: S.
        action_dim: A.
        hidden_layers: number of hidden layers (the paper uses 2).
        hidden_units: width of each hidden layer (the paper uses 500).
        activation: one of :data:`mbrl_ros.models.layers.ACTIVATIONS` (the paper uses ReLU).
        angle_dims: state dimensions that are angles, seen as (sin, cos) (see LearnedDynamicsModel).
        invariant_dims: state dimensions the dynamics do not depend on, not network inputs (see
            LearnedDynamicsModel).
        quaternion_dims: first dimension of each unit quaternion (w, x, y, z), seen as its rotation matrix and
            predicted as a rotation increment (see LearnedDynamicsModel).
        cube_quaternion_dims: those of ``quaternion_dims`` that orient a cube, seen in the canonical of its 24
            alike orientations (see LearnedDynamicsModel).
    """

    kind = "mlp"

    def __init__(
        self, state_dim: int, action_dim: int, hidden_layers: int = 2, hidden_units: int = 500,
        activation: str = "relu", angle_dims: list[int] | None = None, invariant_dims: list[int] | None = None,
        quaternion_dims: list[int] | None = None, cube_quaternion_dims: list[int] | None = None,
    ):
        super().__init__(state_dim, action_dim, 1, hidden_layers, hidden_units, activation, outputs_per_state_dim=1,
                         angle_dims=angle_dims or (), invariant_dims=invariant_dims or (),
                         quaternion_dims=quaternion_dims or (), cube_quaternion_dims=cube_quaternion_dims or ())

    def architecture(self) -> dict[str, Any]:
        return {"state_dim": self.state_dim, "action_dim": self.action_dim, "hidden_layers": self.hidden_layers,
                "hidden_units": self.hidden_units, "activation": self.activation, "angle_dims": self.angle_dims,
                "invariant_dims": self.invariant_dims, "quaternion_dims": self.quaternion_dims,
                "cube_quaternion_dims": self.cube_quaternion_dims}

    def forward(self, inputs: Tensor) -> Tensor:
        """Normalised inputs (1, B, I) -> normalised state change (1, B, S)."""
        return self.network(inputs)

    def predict(self, state: Tensor, action: Tensor) -> tuple[Tensor, None]:
        delta = self.target_normalizer.denormalize(self(self.normalized_inputs(state, action)))
        return self.next_state(state, delta), None

    def training_loss(self, inputs: Tensor, targets: Tensor) -> Tensor:
        """Eq. 3 of the paper in normalised units: half the squared error, summed over dimensions, mean over
        the batch."""
        return 0.5 * (self(inputs) - targets).square().sum(dim=-1).mean()

    @torch.no_grad()
    def validation_scores(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """NLL of a Gaussian around the prediction with the held-out error as its variance, and the MSE."""
        per_dimension = (self(inputs) - targets).square().mean(dim=1)  # (1, S)
        nll = 0.5 * torch.log(2 * math.pi * per_dimension.clamp_min(_MIN_MSE)) + 0.5
        return nll.mean(dim=-1), per_dimension.mean(dim=-1)
