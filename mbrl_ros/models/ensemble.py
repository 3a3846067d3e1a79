"""Probabilistic ensemble of Gaussian MLPs (Chua et al. 2018, PETS), all members evaluated in one batched op."""

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional

from mbrl_ros.models.base import LearnedDynamicsModel
from mbrl_ros.models.layers import ACTIVATIONS, EnsembleLinear
from mbrl_ros.models.registry import register_model_kind
from mbrl_ros.settings import is_number

__all__ = ["ACTIVATIONS", "EnsembleLinear", "ProbabilisticEnsemble"]

LOGVAR_BOUND_WEIGHT = 0.01  # weight of the regulariser pulling max_logvar down and min_logvar up (PETS A.1)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@register_model_kind
class ProbabilisticEnsemble(LearnedDynamicsModel):
    """E members, each a Gaussian MLP over the normalised state change ``s' - s``.

    Each member maps normalised (s, a) to the mean and log-variance of the normalised delta; the
    log-variance is softly bounded by learned ``max_logvar`` / ``min_logvar`` (PETS appendix A.1). After
    training, ``elite_mask`` (E,) marks the members with the best held-out scores (all by default); see
    :meth:`elites` and :meth:`select_members`.

    Args:
        state_dim: S.
        action_dim: A.
        ensemble_size: E members.
        hidden_layers: number of hidden layers.
        hidden_units: width of each hidden layer.
        activation: one of :data:`ACTIVATIONS`.
        angle_dims: state dimensions that are angles, seen as (sin, cos) (see LearnedDynamicsModel).
        invariant_dims: state dimensions the dynamics do not depend on, not network inputs (see
            LearnedDynamicsModel).
        quaternion_dims: first dimension of each unit quaternion (w, x, y, z), seen as its rotation matrix and
            predicted as a rotation increment (see LearnedDynamicsModel).
        cube_quaternion_dims: those of ``quaternion_dims`` that orient a cube, seen in the canonical of its 24
            alike orientations (see LearnedDynamicsModel).
        nll_beta: beta of the beta-NLL loss (Seitzer et al. 2022), in [0, 1]: each element's NLL is weighted by
            its predicted variance to the power beta (no gradient through the weight). 0 is the plain Gaussian
            NLL (PETS); 1 trains the mean as MSE does (PDDM) while the variance is still learned. The plain NLL
            lets a member explain a hard transition (a cube turning under the fingers) by a large variance
            instead of fitting its mean, and planners that roll out the means see that.
    """

    kind = "ensemble"

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        ensemble_size: int = 5,
        hidden_layers: int = 4,
        hidden_units: int = 200,
        activation: str = "silu",
        angle_dims: list[int] | None = None,
        invariant_dims: list[int] | None = None,
        quaternion_dims: list[int] | None = None,
        cube_quaternion_dims: list[int] | None = None,
        nll_beta: float = 0.0,
    ):
        super().__init__(state_dim, action_dim, ensemble_size, hidden_layers, hidden_units, activation,
                         outputs_per_state_dim=2, angle_dims=angle_dims or (), invariant_dims=invariant_dims or (),
                         quaternion_dims=quaternion_dims or (), cube_quaternion_dims=cube_quaternion_dims or ())
        if not (is_number(nll_beta) and 0.0 <= nll_beta <= 1.0):
            raise ValueError(f"nll_beta must be a number in [0, 1], got {nll_beta!r}")
        self.nll_beta = float(nll_beta)
        self.max_logvar = nn.Parameter(torch.full((1, 1, state_dim), 0.5))
        self.min_logvar = nn.Parameter(torch.full((1, 1, state_dim), -10.0))
        self.register_buffer("elite_mask", torch.ones(ensemble_size))

    def architecture(self) -> dict[str, Any]:
        return {"state_dim": self.state_dim, "action_dim": self.action_dim, "ensemble_size": self.ensemble_size,
                "hidden_layers": self.hidden_layers, "hidden_units": self.hidden_units,
                "activation": self.activation, "angle_dims": self.angle_dims,
                "invariant_dims": self.invariant_dims, "quaternion_dims": self.quaternion_dims,
                "cube_quaternion_dims": self.cube_quaternion_dims, "nll_beta": self.nll_beta}

    def forward(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised inputs (E, B, I) -> mean and softly bounded log-variance (E, B, S), normalised."""
        mean, logvar = self.network(inputs).split(self.state_dim, dim=-1)
        logvar = self.max_logvar - functional.softplus(self.max_logvar - logvar)
        logvar = self.min_logvar + functional.softplus(logvar - self.min_logvar)
        return mean, logvar

    def predict(self, state: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        mean, logvar = self(self.normalized_inputs(state, action))
        std = self.target_normalizer.std
        return self.next_state(state, self.target_normalizer.denormalize(mean)), logvar.exp() * std.square()

    def predict_mean(self, state: Tensor, action: Tensor) -> Tensor:
        """The members' mean next states (E, B, S) without the variance: the output layer computes only its S
        mean columns and the log-variance bounds are skipped (0.87-0.90 of the plan time at the PDDM cube config)."""
        mean = self.network(self.normalized_inputs(state, action), output_columns=self.state_dim)
        return self.next_state(state, self.target_normalizer.denormalize(mean))

    def training_loss(self, inputs: Tensor, targets: Tensor) -> Tensor:
        """Gaussian NLL (up to constants; beta-NLL with :attr:`nll_beta`) averaged over batch and dimensions,
        summed over members, plus the log-variance bound regulariser."""
        mean, logvar = self(inputs)
        nll = (mean - targets).square() * torch.exp(-logvar) + logvar
        if self.nll_beta:
            nll = nll * torch.exp(self.nll_beta * logvar.detach())
        return nll.mean(dim=(1, 2)).sum() + LOGVAR_BOUND_WEIGHT * (self.max_logvar.sum() - self.min_logvar.sum())

    @torch.no_grad()
    def validation_scores(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        mean, logvar = self(inputs)
        squared_error = (mean - targets).square()
        nll = 0.5 * (squared_error * torch.exp(-logvar) + logvar) + _HALF_LOG_2PI
        return nll.mean(dim=(1, 2)), squared_error.mean(dim=(1, 2))

    def _reparametrize_targets(self, ratio: Tensor, shift: Tensor) -> None:
        super()._reparametrize_targets(ratio, shift)
        logvar_shift = 2 * torch.log(ratio)  # log-variance of y * ratio is log-variance of y + 2 log ratio
        self.network.reparametrize_outputs(slice(self.state_dim, 2 * self.state_dim), torch.ones_like(ratio),
                                           logvar_shift)
        self.max_logvar.add_(logvar_shift)
        self.min_logvar.add_(logvar_shift)

    def elites(self) -> list[int]:
        """Indices of the elite members."""
        return torch.nonzero(self.elite_mask > 0.5).flatten().tolist()

    def set_elites(self, members: Sequence[int]) -> None:
        """Marks ``members`` as the elites (the others stay in the model, e.g. to continue training)."""
        if not members or any(not 0 <= m < self.ensemble_size for m in members):
            raise ValueError(f"elites must be a non-empty subset of range({self.ensemble_size}), got {members}")
        self.elite_mask.zero_()
        self.elite_mask[list(members)] = 1.0

    @torch.no_grad()
    def select_members(self, members: Sequence[int]) -> "ProbabilisticEnsemble":
        """A new ensemble made of copies of ``members`` (e.g. :meth:`elites`, for deployment), all elite."""
        if not members or any(not 0 <= m < self.ensemble_size for m in members):
            raise ValueError(f"members must be a non-empty subset of range({self.ensemble_size}), got {members}")
        subset = ProbabilisticEnsemble(**{**self.architecture(), "ensemble_size": len(members)}).to(self.device)
        index = torch.tensor(list(members), device=self.device)
        state = {name: (value.index_select(0, index) if self.is_per_member(name) else value)
                 for name, value in self.state_dict().items()}
        state["elite_mask"] = torch.ones(len(members), device=self.device)
        subset.load_state_dict(state)
        return subset

