"""The contract between learned dynamics models and the planners that roll them out, and what trainers need."""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from mbrl_ros.models.layers import EnsembleMLP
from mbrl_ros.models.normalizer import Normalizer
from mbrl_ros.rotations import (
    canonical_cube_rotation,
    quaternion_conjugate,
    quaternion_multiply,
    quaternion_to_matrix,
    unit_quaternion,
)
from mbrl_ros.settings import is_integer
from mbrl_ros.tensors import constant_like

MAX_HIDDEN_LAYERS = 64  # bounds what an architecture read from a file or a message can make us build
_IDENTITY = torch.tensor([1.0, 0.0, 0.0, 0.0])  # the unit quaternion of no rotation


def _contiguous_runs(dims: Sequence[int]) -> list[slice]:
    """Increasing ``dims`` as the fewest slices that select them, in order."""
    runs: list[slice] = []
    for d in dims:
        if runs and runs[-1].stop == d:
            runs[-1] = slice(runs[-1].start, d + 1)
        else:
            runs.append(slice(d, d + 1))
    return runs


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

    def predict_mean(self, state: Tensor, action: Tensor) -> Tensor:
        """The mean of :meth:`predict` alone, (E, B, S), for planners that draw no aleatoric noise; models
        whose variance costs extra work skip it."""
        return self.predict(state, action)[0]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


class LearnedDynamicsModel(DynamicsModel):
    """A dynamics model made of an :class:`EnsembleMLP` over standardised inputs ``(s, a)`` and targets ``s' - s``.

    Subclasses define the loss; this class owns the normalisers, the batched network and what a trainer and
    the serializer need: :meth:`architecture` (the constructor's arguments, JSON-able), :meth:`training_loss`,
    :meth:`validation_scores` and :meth:`refit_normalizers`.

    Args:
        state_dim: S.
        action_dim: A.
        ensemble_size: E members, evaluated in one batched op.
        hidden_layers: number of hidden layers.
        hidden_units: width of each hidden layer.
        activation: name of the activation, see :data:`mbrl_ros.models.layers.ACTIVATIONS`.
        outputs_per_state_dim: 1 for a mean only, 2 for mean and log-variance.
        angle_dims: state dimensions that are angles (rad): the network sees each as (sin, cos) instead (PETS's
            input preprocessing), so what it learns at one angle carries over to the same angle plus 2 pi and
            to poses it has not seen yet. Targets stay raw state changes.
        invariant_dims: state dimensions the dynamics do not depend on, such as the position of a cart on its
            rail or of a goal the task reads: the network does not see them (it still predicts their change),
            so what it learns in one place holds in places it has not been. Disjoint from ``angle_dims``.
        quaternion_dims: the first state dimension of each unit quaternion (4 dimensions, w first, MuJoCo's
            order), such as a free body's orientation. The network sees it as its rotation matrix (9 inputs,
            the same for ``q`` and ``-q``) and predicts the rotation from ``q`` to ``q'`` (the increment
            ``q' q^-1``, in the frame ``q`` is expressed in, as ``[w - 1, x, y, z]`` with ``w >= 0``) instead of
            ``q' - q``, which is that increment multiplied by ``q``: a turn learned at one orientation is the
            same turn at another, and predictions stay unit quaternions. Disjoint from the other two.
        cube_quaternion_dims: those of ``quaternion_dims`` that orient a body with a cube's symmetry (a uniform
            cube, as the Shadow hand's): the 24 orientations that put the cube in the same place are one state
            to its dynamics, so the network sees the rotation matrix of the one closest to the identity
            (:func:`mbrl_ros.rotations.canonical_cube_rotation`). The increment ``q' q^-1`` it predicts is the
            same for all 24, so what it learns about a face carries over to the other five.
    """

    kind: ClassVar[str]

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        ensemble_size: int,
        hidden_layers: int,
        hidden_units: int,
        activation: str,
        outputs_per_state_dim: int,
        angle_dims: Sequence[int] = (),
        invariant_dims: Sequence[int] = (),
        quaternion_dims: Sequence[int] = (),
        cube_quaternion_dims: Sequence[int] = (),
    ):
        super().__init__()
        for name, value, minimum, maximum in (
            ("state_dim", state_dim, 1, None),
            ("action_dim", action_dim, 0, None),
            ("ensemble_size", ensemble_size, 1, None),
            ("hidden_layers", hidden_layers, 0, MAX_HIDDEN_LAYERS),
            ("hidden_units", hidden_units, 1, None),
        ):
            if not is_integer(value) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
            if maximum is not None and value > maximum:
                raise ValueError(f"{name} must be at most {maximum}, got {value}")
        angle_dims, invariant_dims = list(angle_dims), list(invariant_dims)
        for name, dims in (("angle_dims", angle_dims), ("invariant_dims", invariant_dims)):
            if not all(is_integer(d) and 0 <= d < state_dim for d in dims) \
                    or len(set(dims)) != len(dims):
                raise ValueError(f"{name} must be distinct state dimensions in [0, {state_dim}), got {dims}")
        if set(angle_dims) & set(invariant_dims):
            raise ValueError(f"a state dimension cannot be in both angle_dims and invariant_dims, got "
                             f"{sorted(set(angle_dims) & set(invariant_dims))}")
        quaternion_dims = list(quaternion_dims)
        quaternion_components = [d + i for d in quaternion_dims for i in range(4) if is_integer(d)]
        if len(quaternion_components) != 4 * len(quaternion_dims) \
                or not all(0 <= d < state_dim for d in quaternion_components) \
                or len(set(quaternion_components)) != len(quaternion_components):
            raise ValueError(f"quaternion_dims must be the first dimensions of non-overlapping quaternions of 4 "
                             f"state dimensions in [0, {state_dim}), got {quaternion_dims}")
        if set(quaternion_components) & set(angle_dims + invariant_dims):
            raise ValueError(f"quaternion dimensions cannot also be in angle_dims or invariant_dims, got "
                             f"{sorted(set(quaternion_components) & set(angle_dims + invariant_dims))}")
        cube_quaternion_dims = list(cube_quaternion_dims)
        if not all(is_integer(d) and d in quaternion_dims for d in cube_quaternion_dims) \
                or len(set(cube_quaternion_dims)) != len(cube_quaternion_dims):
            raise ValueError(f"cube_quaternion_dims must be distinct entries of quaternion_dims {quaternion_dims}, "
                             f"got {cube_quaternion_dims}")
        self.state_dim, self.action_dim, self.ensemble_size = state_dim, action_dim, ensemble_size
        self.hidden_layers, self.hidden_units, self.activation = hidden_layers, hidden_units, activation
        self.angle_dims, self.invariant_dims, self.quaternion_dims = angle_dims, invariant_dims, quaternion_dims
        self.cube_quaternion_dims = cube_quaternion_dims
        special = set(angle_dims + invariant_dims + quaternion_components)
        plain_dims = [d for d in range(state_dim) if d not in special]
        self._plain_runs = _contiguous_runs(plain_dims)  # slices copy faster than an index gather
        # an index list would be copied to the GPU at every call
        self.register_buffer("_angle_index", torch.tensor(angle_dims, dtype=torch.long), persistent=False)
        input_dim = len(plain_dims) + 2 * len(angle_dims) + 9 * len(quaternion_dims) + action_dim
        self.input_normalizer = Normalizer(input_dim)
        self.target_normalizer = Normalizer(state_dim)
        self.network = EnsembleMLP(
            ensemble_size, input_dim, outputs_per_state_dim * state_dim, hidden_layers, hidden_units, activation,
        )

    @abstractmethod
    def architecture(self) -> dict[str, Any]:
        """The constructor's keyword arguments (JSON-able): ``type(self)(**architecture())`` rebuilds the model."""

    @abstractmethod
    def training_loss(self, inputs: Tensor, targets: Tensor) -> Tensor:
        """Scalar loss to minimise on a batch: normalised inputs (E, B, I) (:meth:`raw_inputs`), targets (E, B, S)."""

    @abstractmethod
    def validation_scores(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """Per-member scores on held-out data, lower is better.

        Args:
            inputs: (E, V, I) normalised.
            targets: (E, V, S) normalised state changes.

        Returns:
            nll: (E,) Gaussian negative log-likelihood per target dimension (nats), the early-stopping score.
            mse: (E,) mean squared error of the predicted mean per target dimension.
        """

    @staticmethod
    def is_per_member(name: str) -> bool:
        """Whether the state-dict entry ``name`` is stacked per member (first dimension E)."""
        return name.startswith("network.")

    def normalized_inputs(self, state: Tensor, action: Tensor) -> Tensor:
        """(..., S), (..., A) raw -> (E, B, I) normalised network inputs (see :meth:`raw_inputs`), expanded to
        all members if given as (B, ·)."""
        if state.shape[:-1] != action.shape[:-1] or state.ndim not in (2, 3):
            raise ValueError(f"state and action must be (B, ·) or (E, B, ·) alike, got {tuple(state.shape)} "
                             f"and {tuple(action.shape)}")
        if state.ndim == 3 and state.shape[0] != self.ensemble_size:
            raise ValueError(f"(E, B, ·) inputs need E = {self.ensemble_size} blocks, got {state.shape[0]}")
        inputs = self.input_normalizer.normalize(self.raw_inputs(state, action))
        return inputs.expand(self.ensemble_size, *inputs.shape) if inputs.ndim == 2 else inputs

    def raw_inputs(self, state: Tensor, action: Tensor) -> Tensor:
        """(..., S), (..., A) -> (..., I): the state dimensions that are neither angles, invariant nor
        quaternions, then sin and cos of each angle, then each quaternion's rotation matrix (9, row-major; a cube's
        canonical one, see ``cube_quaternion_dims``), then the action; the plain concatenation (I = S + A) when
        there are none of them."""
        if not self.angle_dims and not self.invariant_dims and not self.quaternion_dims:
            return torch.cat([state, action], dim=-1)
        angles = state[..., self._angle_index]
        rotations = [self._rotation_input(state[..., d:d + 4], d in self.cube_quaternion_dims)
                     for d in self.quaternion_dims]
        plain = [state[..., run] for run in self._plain_runs]
        return torch.cat([*plain, angles.sin(), angles.cos(), *rotations, action], dim=-1)

    def _rotation_input(self, quaternion: Tensor, cube: bool) -> Tensor:
        """(..., 4) -> (..., 9): the rotation matrix of ``quaternion``, a cube's canonical one if ``cube``."""
        rotation = quaternion_to_matrix(quaternion)
        if cube:
            rotation = canonical_cube_rotation(rotation)
        return rotation.flatten(-2)

    def state_change(self, state: Tensor, next_state: Tensor) -> Tensor:
        """The training target of ``(s, s')``, (..., S) each -> (..., S): ``s' - s``, and for each quaternion
        the increment ``q' q^-1`` as ``[w - 1, x, y, z]`` with ``w >= 0`` (see ``quaternion_dims``)."""
        change = next_state - state
        for d in self.quaternion_dims:
            turned, start = unit_quaternion(next_state[..., d:d + 4]), unit_quaternion(state[..., d:d + 4])
            increment = quaternion_multiply(turned, quaternion_conjugate(start))
            increment = torch.where(increment[..., :1] < 0, -increment, increment)
            change[..., d:d + 4] = increment - constant_like(_IDENTITY, increment)
        return change

    def next_state(self, state: Tensor, change: Tensor) -> Tensor:
        """``s'`` from ``s`` (..., S) and a predicted :meth:`state_change` (..., S), broadcasting: ``s + change``,
        and each quaternion turned by its increment (normalised; the result is a unit quaternion)."""
        next_state = state + change
        for d in self.quaternion_dims:
            increment = unit_quaternion(change[..., d:d + 4] + constant_like(_IDENTITY, change))
            next_state[..., d:d + 4] = quaternion_multiply(increment, unit_quaternion(state[..., d:d + 4]))
        return next_state

    @torch.no_grad()
    def refit_normalizers(self, inputs: Tensor, targets: Tensor, preserve_function: bool = True) -> None:
        """Fits the normalisers on raw ``inputs`` (N, I) (:meth:`raw_inputs`) and ``targets`` (N, S) (state changes).

        With ``preserve_function``, the first and last layers are re-expressed for the new statistics so
        that the model computes exactly the same function of raw inputs as before: a model continued on
        more data keeps what it learnt instead of seeing its inputs shift.
        """
        old_input_mean, old_input_std = self.input_normalizer.mean.clone(), self.input_normalizer.std.clone()
        old_target_mean, old_target_std = self.target_normalizer.mean.clone(), self.target_normalizer.std.clone()
        self.input_normalizer.fit(inputs)
        self.target_normalizer.fit(targets)
        if not preserve_function:
            return
        # x_old = (x - m) / s = x_new * (s' / s) + (m' - m) / s, with x_new = (x - m') / s'
        self.network.reparametrize_inputs(
            scale=self.input_normalizer.std / old_input_std,
            shift=(self.input_normalizer.mean - old_input_mean) / old_input_std,
        )
        # y_new = (y_old * t + u - u') / t'
        ratio = old_target_std / self.target_normalizer.std
        self._reparametrize_targets(ratio, (old_target_mean - self.target_normalizer.mean) / self.target_normalizer.std)

    def _reparametrize_targets(self, ratio: Tensor, shift: Tensor) -> None:
        """Rescales the normalised-mean outputs by ``ratio`` (S,) and adds ``shift`` (S,)."""
        self.network.reparametrize_outputs(slice(0, self.state_dim), ratio, shift)

    def weight_decay_parameter_groups(self, weight_decay: float | list[float]) -> list[dict[str, Any]]:
        """Optimizer parameter groups: each layer's weights with its decay, everything else undecayed.

        Args:
            weight_decay: one L2 coefficient for all layers, or one per layer (hidden layers, then output).
        """
        layers = self.network.linear_layers()
        decays = [weight_decay] * len(layers) if isinstance(weight_decay, int | float) else list(weight_decay)
        if len(decays) != len(layers):
            raise ValueError(f"weight_decay needs one value per layer ({len(layers)}), got {len(decays)}")
        decayed = {id(layer.weight) for layer in layers}
        groups = [{"params": [layer.weight], "weight_decay": float(decay)}
                  for layer, decay in zip(layers, decays, strict=True)]
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in decayed]
        return groups + [{"params": rest, "weight_decay": 0.0}]
