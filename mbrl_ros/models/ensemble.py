"""Probabilistic ensemble of Gaussian MLPs (Chua et al. 2018, PETS), all members evaluated in one batched op."""

import math

import torch
from torch import Tensor, nn
from torch.nn import functional

from mbrl_ros.models.base import DynamicsModel
from mbrl_ros.models.normalizer import Normalizer

ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}


class EnsembleLinear(nn.Module):
    """``E`` independent affine maps applied with one batched matmul: (E, B, in) -> (E, B, out).

    Weights are shaped (E, in, out); initialised as in PETS (truncated normal, std ``1 / (2 sqrt(in))``).
    """

    def __init__(self, ensemble_size: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(ensemble_size, 1, out_features))
        std = 1.0 / (2.0 * math.sqrt(in_features))
        nn.init.trunc_normal_(self.weight, std=std, a=-2 * std, b=2 * std)

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class ProbabilisticEnsemble(DynamicsModel):
    """E members, each a Gaussian MLP over the normalised state change ``s' - s``.

    Each member maps normalised (s, a) to the mean and log-variance of the normalised delta; the
    log-variance is softly bounded by learned ``max_logvar`` / ``min_logvar`` (PETS appendix A.1).

    Args:
        state_dim: S.
        action_dim: A.
        ensemble_size: E members.
        hidden_layers: number of hidden layers.
        hidden_units: width of each hidden layer.
        activation: one of :data:`ACTIVATIONS`.
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        ensemble_size: int = 5,
        hidden_layers: int = 4,
        hidden_units: int = 200,
        activation: str = "silu",
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        self.state_dim, self.action_dim, self.ensemble_size = state_dim, action_dim, ensemble_size
        self.input_normalizer = Normalizer(state_dim + action_dim)
        self.target_normalizer = Normalizer(state_dim)
        widths = [state_dim + action_dim] + [hidden_units] * hidden_layers
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [EnsembleLinear(ensemble_size, fan_in, fan_out), ACTIVATIONS[activation]()]
        layers.append(EnsembleLinear(ensemble_size, widths[-1], 2 * state_dim))
        self.layers = nn.Sequential(*layers)
        self.max_logvar = nn.Parameter(torch.full((1, 1, state_dim), 0.5))
        self.min_logvar = nn.Parameter(torch.full((1, 1, state_dim), -10.0))

    def forward(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised inputs (E, B, S + A) -> mean and softly bounded log-variance (E, B, S), normalised."""
        mean, logvar = self.layers(inputs).split(self.state_dim, dim=-1)
        logvar = self.max_logvar - functional.softplus(self.max_logvar - logvar)
        logvar = self.min_logvar + functional.softplus(logvar - self.min_logvar)
        return mean, logvar

    def predict(self, state: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        inputs = self.input_normalizer.normalize(torch.cat([state, action], dim=-1))
        if inputs.ndim == 2:
            inputs = inputs.expand(self.ensemble_size, *inputs.shape)
        mean, logvar = self(inputs)
        std = self.target_normalizer.std
        return state + self.target_normalizer.denormalize(mean), logvar.exp() * std.square()
