"""A policy network: an MLP from states to actions squashed into the action bounds (saved as kind "policy")."""

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mbrl_ros.models.layers import ACTIVATIONS
from mbrl_ros.models.normalizer import Normalizer
from mbrl_ros.models.registry import register_model_kind


@register_model_kind
class PolicyNetwork(nn.Module):
    """``a = low + (tanh(f(normalise(s))) + 1) / 2 * (high - low)``, f an MLP.

    Besides the ordinary forward pass it evaluates many parameter vectors at once (:meth:`batched_forward`),
    which POPLIN-P's search over parameter perturbations needs.

    Args:
        state_dim: S.
        action_dim: A.
        action_low: (A,) lowest action.
        action_high: (A,) highest action.
        hidden_layers: number of hidden layers.
        hidden_units: width of each hidden layer (Nagabandi et al. 2017 use 64 x 64).
        activation: one of :data:`mbrl_ros.models.layers.ACTIVATIONS`.
    """

    kind = "policy"

    def __init__(self, state_dim: int, action_dim: int, action_low: list[float], action_high: list[float],
                 hidden_layers: int = 2, hidden_units: int = 64, activation: str = "tanh"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        low, high = [float(x) for x in action_low], [float(x) for x in action_high]
        if len(low) != action_dim or len(high) != action_dim or not all(
            math.isfinite(lo) and math.isfinite(hi) and lo < hi for lo, hi in zip(low, high, strict=True)
        ):
            raise ValueError(f"action bounds must be {action_dim} finite pairs with low < high, got {low}, {high}")
        self.state_dim, self.action_dim = state_dim, action_dim
        self.hidden_layers, self.hidden_units, self.activation = hidden_layers, hidden_units, activation
        self.register_buffer("action_low", torch.tensor(low))
        self.register_buffer("action_high", torch.tensor(high))
        self.state_normalizer = Normalizer(state_dim)
        widths = [state_dim] + [hidden_units] * hidden_layers + [action_dim]
        self.linears = nn.ModuleList(nn.Linear(i, o) for i, o in zip(widths[:-1], widths[1:], strict=True))
        self._act = ACTIVATIONS[activation]()

    def architecture(self) -> dict[str, Any]:
        return {"state_dim": self.state_dim, "action_dim": self.action_dim,
                "action_low": self.action_low.tolist(), "action_high": self.action_high.tolist(),
                "hidden_layers": self.hidden_layers, "hidden_units": self.hidden_units,
                "activation": self.activation}

    def squash(self, pre_activation: Tensor) -> Tensor:
        """Unbounded network outputs (..., A) -> actions in the bounds."""
        return self.action_low + (torch.tanh(pre_activation) + 1) / 2 * (self.action_high - self.action_low)

    def pre_activation(self, states: Tensor) -> Tensor:
        """States (..., S) -> the network's unbounded outputs (..., A)."""
        x = self.state_normalizer.normalize(states)
        for layer in self.linears[:-1]:
            x = self._act(layer(x))
        return self.linears[-1](x)

    def forward(self, states: Tensor) -> Tensor:
        """States (..., S) -> actions (..., A) within the bounds."""
        return self.squash(self.pre_activation(states))

    @torch.no_grad()
    def act(self, state: Sequence[float]) -> list[float]:
        """One state (S,) in, one action (A,) out, as plain floats (for a controller's fast path)."""
        return self(torch.as_tensor(state, dtype=torch.float32, device=self.action_low.device)).tolist()

    def parameter_vector(self) -> Tensor:
        """(P,) the network's weights and biases, flattened (the space POPLIN-P perturbs)."""
        return torch.cat([p.detach().reshape(-1) for layer in self.linears for p in (layer.weight, layer.bias)])

    def batched_forward(self, states: Tensor, parameters: Tensor) -> Tensor:
        """Each of N parameter vectors acting on its own rows: states (N, K, S), parameters (N, P) -> (N, K, A)."""
        x = self.state_normalizer.normalize(states)
        offset = 0
        for index, layer in enumerate(self.linears):
            fan_out, fan_in = layer.weight.shape
            weight = parameters[:, offset: offset + fan_out * fan_in].view(-1, fan_out, fan_in)
            offset += fan_out * fan_in
            bias = parameters[:, offset: offset + fan_out]
            offset += fan_out
            x = torch.baddbmm(bias[:, None, :], x, weight.transpose(1, 2))
            if index < len(self.linears) - 1:
                x = self._act(x)
        return self.squash(x)
