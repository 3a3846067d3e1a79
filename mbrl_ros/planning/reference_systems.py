"""Systems with known dynamics for checking planners: a linear-quadratic regulator problem and a cartpole swing-up.

Both give batched torch dynamics ``step(state (N, S), action (N, A)) -> (N, S)``, a reward of (s, a, s') in
the task contract, action bounds and start states; :class:`KnownDynamics` wraps such a step function as a
single-member deterministic :class:`~mbrl_ros.models.DynamicsModel`, so a planner can run on the true model.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from mbrl_ros.models.base import DynamicsModel

StepFn = Callable[[Tensor, Tensor], Tensor]


class KnownDynamics(DynamicsModel):
    """A deterministic step function ``s' = f(s, a)`` as a one-member model (``predict`` variance: None).

    Args:
        step: batched dynamics, (N, S) and (N, A) -> (N, S).
        state_dim: S.
        action_dim: A.
    """

    def __init__(self, step: StepFn, state_dim: int, action_dim: int):
        super().__init__()
        self.step, self.state_dim, self.action_dim, self.ensemble_size = step, state_dim, action_dim, 1
        self.register_buffer("_device_marker", torch.empty(0))

    @property
    def device(self) -> torch.device:
        return self._device_marker.device

    def predict(self, state: Tensor, action: Tensor) -> tuple[Tensor, None]:
        if state.ndim == 3:
            if state.shape[0] != 1:
                raise ValueError(f"a one-member model takes (1, B, S) blocks, got {tuple(state.shape)}")
            state, action = state[0], action[0]
        return self.step(state, action).unsqueeze(0), None


@dataclass
class LinearQuadraticSystem:
    """``x' = A x + B u`` with stage cost ``x'^T Q x' + u^T R u`` (reward: its negative), actions in bounds.

    Attributes:
        a: (S, S) state transition.
        b: (S, A) input matrix.
        q: (S, S) state cost, positive semi-definite.
        r: (A, A) action cost, positive definite.
        action_low: (A,) lowest action.
        action_high: (A,) highest action.
    """

    a: Tensor
    b: Tensor
    q: Tensor
    r: Tensor
    action_low: Tensor
    action_high: Tensor

    @classmethod
    def double_integrator(cls, dt: float = 0.3, action_limit: float = 5.0,
                          action_cost: float = 0.01) -> "LinearQuadraticSystem":
        """A unit point mass on a line: state (position m, velocity m/s), action a force (N), period ``dt`` (s).

        Stage cost ``p^2 + 0.1 v^2 + action_cost f^2``.
        """
        return cls(
            a=torch.tensor([[1.0, dt], [0.0, 1.0]]),
            b=torch.tensor([[0.5 * dt * dt], [dt]]),
            q=torch.diag(torch.tensor([1.0, 0.1])),
            r=torch.tensor([[action_cost]]),
            action_low=torch.tensor([-action_limit]),
            action_high=torch.tensor([action_limit]),
        )

    @property
    def state_dim(self) -> int:
        return self.a.shape[0]

    @property
    def action_dim(self) -> int:
        return self.b.shape[1]

    def step(self, state: Tensor, action: Tensor) -> Tensor:
        """(N, S), (N, A) -> (N, S)."""
        return state @ self.a.T.to(state) + action @ self.b.T.to(state)

    def reward(self, state: Tensor, action: Tensor, next_state: Tensor) -> Tensor:
        """(N,) negative stage cost of the transitions."""
        del state
        return -(((next_state @ self.q.to(next_state)) * next_state).sum(-1)
                 + ((action @ self.r.to(action)) * action).sum(-1))

    def model(self) -> KnownDynamics:
        """The true dynamics as a planner's model."""
        return KnownDynamics(self.step, self.state_dim, self.action_dim)

    def lqr_gain(self) -> Tensor:
        """(A, S) gain K of the optimal infinite-horizon controller ``u = -K x`` (discrete Riccati equation).

        Minimising the sum of ``x_{t+1}^T Q x_{t+1} + u_t^T R u_t`` is the standard problem with stage cost
        ``x^T Q x + u^T R u`` up to the constant first-state cost, so it has the same gain.
        """
        from scipy.linalg import solve_discrete_are

        a, b, q, r = (m.double().numpy() for m in (self.a, self.b, self.q, self.r))
        p = solve_discrete_are(a, b, q, r)
        gain = torch.linalg.solve(torch.from_numpy(r + b.T @ p @ b), torch.from_numpy(b.T @ p @ a))
        return gain.float()

    def episode_cost(self, start: Tensor, controller: Callable[[Tensor], Tensor], steps: int) -> float:
        """Closed-loop cost (sum of stage costs) of ``controller`` (state (S,) -> action (A,)) from ``start``."""
        state, cost = start.float(), 0.0
        for _ in range(steps):
            action = controller(state).float().reshape(self.action_dim)
            next_state = self.step(state[None], action[None])[0]
            cost -= float(self.reward(state[None], action[None], next_state[None])[0])
            state = next_state
        return cost


# Cartpole swing-up: a cart on an unbounded rail with a uniform pole on a hinge, pole hanging down at start.
_GRAVITY = 9.81  # (m/s^2)
_CART_MASS = 1.0  # (kg)
_POLE_MASS = 0.1  # (kg)
_POLE_LENGTH = 0.6  # (m) hinge to tip
_MAX_FORCE = 10.0  # (N) force on the cart at action 1
_CONTROL_PERIOD = 0.05  # (seconds)
_SUBSTEPS = 5  # semi-implicit Euler steps per control period
_ACTION_COST = 0.01  # reward units per action^2


@dataclass
class CartpoleSwingUp:
    """The PETS cartpole swing-up task with analytic dynamics (batched torch) instead of MuJoCo.

    State (S=4): cart position x (m), pole angle theta (rad, 0 upright, positive tilting towards +x),
    cart velocity (m/s), pole angular velocity (rad/s). Action (A=1) in [-1, 1]: the force on the cart in
    units of 10 N. Reward (PETS): ``exp(-|tip - (0, L)|^2 / L^2) - 0.01 a^2`` with the pole tip at
    ``(x + L sin theta, L cos theta)``: at most 1 per step, with the pole upright over the origin.

    Attributes:
        control_period: seconds per step.
        episode_steps: steps per episode (PETS: 200).
    """

    control_period: float = _CONTROL_PERIOD
    episode_steps: int = 200
    state_dim: int = field(default=4, init=False)
    action_dim: int = field(default=1, init=False)

    @property
    def action_low(self) -> Tensor:
        return torch.tensor([-1.0])

    @property
    def action_high(self) -> Tensor:
        return torch.tensor([1.0])

    def step(self, state: Tensor, action: Tensor) -> Tensor:
        """(N, 4), (N, 1) -> (N, 4): ``control_period`` of frictionless cart-pole motion."""
        x, theta, x_dot, theta_dot = state.unbind(-1)
        force = _MAX_FORCE * action[..., 0].clamp(-1.0, 1.0)
        half_length, total_mass = _POLE_LENGTH / 2.0, _CART_MASS + _POLE_MASS
        dt = self.control_period / _SUBSTEPS
        for _ in range(_SUBSTEPS):
            sin, cos = torch.sin(theta), torch.cos(theta)
            push = (force + _POLE_MASS * half_length * theta_dot.square() * sin) / total_mass
            theta_acc = (_GRAVITY * sin - cos * push) / (
                half_length * (4.0 / 3.0 - _POLE_MASS * cos.square() / total_mass))
            x_acc = push - _POLE_MASS * half_length * theta_acc * cos / total_mass
            x_dot = x_dot + dt * x_acc
            theta_dot = theta_dot + dt * theta_acc
            x = x + dt * x_dot
            theta = theta + dt * theta_dot
        return torch.stack([x, theta, x_dot, theta_dot], dim=-1)

    def reward(self, state: Tensor, action: Tensor, next_state: Tensor) -> Tensor:
        """(N,) PETS swing-up reward of the transitions."""
        del state
        x, theta = next_state[..., 0], next_state[..., 1]
        tip_x, tip_y = x + _POLE_LENGTH * torch.sin(theta), _POLE_LENGTH * torch.cos(theta)
        distance = tip_x.square() + (tip_y - _POLE_LENGTH).square()
        return torch.exp(-distance / _POLE_LENGTH**2) - _ACTION_COST * action.square().sum(-1)

    def model(self) -> KnownDynamics:
        """The true dynamics as a planner's model."""
        return KnownDynamics(self.step, self.state_dim, self.action_dim)

    def initial_states(self, count: int, generator: torch.Generator | None = None) -> Tensor:
        """(count, 4) start states: pole hanging down (theta = pi), everything perturbed by N(0, 0.1^2)."""
        noise = 0.1 * torch.randn(count, 4, generator=generator)
        return noise + torch.tensor([0.0, math.pi, 0.0, 0.0])

    def episode_return(self, start: Tensor, controller: Callable[[Tensor], Tensor],
                       steps: int | None = None) -> float:
        """Closed-loop return of ``controller`` (state (4,) -> action (1,)) from ``start`` (4,)."""
        state, total = start.float(), 0.0
        for _ in range(self.episode_steps if steps is None else steps):
            action = controller(state).float().reshape(1).clamp(-1.0, 1.0)
            next_state = self.step(state[None], action[None])[0]
            total += float(self.reward(state[None], action[None], next_state[None])[0])
            state = next_state
        return total

