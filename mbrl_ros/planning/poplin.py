"""POPLIN (Wang and Ba 2019): the cross-entropy method guided by a policy network, through a dynamics model.

Three planners, each a :class:`~mbrl_ros.planning.CEM` whose candidates involve the policy π:

- ``poplin_a_init`` (:class:`PoplinAInit`): π rolled through the model proposes the initial action sequence;
  CEM searches actions around it (noise added to that proposal).
- ``poplin_a_replan`` (:class:`PoplinAReplan`): CEM searches noise sequences ε (H, A); along each particle's
  predicted trajectory the action is ``clip(π(ŝ_t) + ε_t)``.
- ``poplin_p`` (:class:`PoplinP`): CEM searches perturbations δ of π's parameter vector θ (P entries); the
  action is ``π_{θ + δ}(ŝ_t)``, one δ for the whole horizon (``uni``) or one per step (``sep``).

After planning the policy is distilled from the planner (:meth:`PolicyGuidedCEM.distill`): ``bc`` clones the
planned first actions at the states planned from (aggregated, DAgger-style, since the controller visits
them); ``avg`` (POPLIN-P) moves θ by the mean of the planned perturbations since the last distillation.

The A-Replan and P planners search outside the action space, so they plan with the evaluator
(:meth:`PolicyGuidedCEM.plan`), not with an action-sequence objective; :class:`~mbrl_ros.planning.MPC` does
that when its optimizer is one of these. All work on a batch of B start states, problem b drawing its random
numbers from generator b.
"""

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn.utils import vector_to_parameters

from mbrl_ros.planning import sampling
from mbrl_ros.planning.cem import CEM
from mbrl_ros.planning.optimizer import Objective, Optimizer, check_fraction
from mbrl_ros.planning.propagation import FeedbackFn, TrajectoryEvaluator
from mbrl_ros.planning.sampling import Generators
from mbrl_ros.policies.imitation import DaggerDataset, ImitationConfig, fit_policy
from mbrl_ros.policies.network import PolicyNetwork

PERTURBATIONS = ("uni", "sep")
DISTILLATIONS = ("bc", "avg")


class PolicyGuidedCEM(CEM):
    """CEM with a policy network in the loop; the base of the POPLIN planners.

    Args:
        lower_bound: (A,) lowest action per dimension.
        upper_bound: (A,) highest action per dimension.
        population: candidates sampled per iteration.
        elites: elite count (int) or ratio of the population.
        iterations: CEM iterations per plan.
        alpha: smoothing of the sampling distribution (weight of the previous one).
        initial_std: first standard deviation of the action noise, in units of the action range.
        hidden_layers: hidden layers of the policy built when none is given.
        hidden_units: width of that policy's hidden layers.
        distillation: "bc" (behaviour cloning of the planned actions) or, for POPLIN-P only, "avg".
        distill_epochs: epochs of each behaviour-cloning distillation.
    """

    def __init__(
        self,
        lower_bound: Sequence[float] | Tensor,
        upper_bound: Sequence[float] | Tensor,
        population: int = 350,
        elites: int | float = 0.1,
        iterations: int = 5,
        alpha: float = 0.1,
        initial_std: float = 0.25,
        hidden_layers: int = 2,
        hidden_units: int = 64,
        distillation: str = "bc",
        distill_epochs: int = 20,
    ):
        super().__init__(lower_bound, upper_bound, population, elites, iterations, alpha, initial_std)
        if distillation not in self.distillations():
            raise ValueError(f"{self.name} distils by {self.distillations()}, got {distillation!r}")
        self.hidden_layers, self.hidden_units = hidden_layers, hidden_units
        self.distillation, self.distill_epochs = distillation, distill_epochs
        self.policy: PolicyNetwork | None = None
        self.demonstrations = DaggerDataset()  # (state, planned first action) of every plan
        self.reset()

    @classmethod
    def distillations(cls) -> tuple[str, ...]:
        return ("bc",)

    def set_policy(self, policy: PolicyNetwork) -> None:
        """Plans with ``policy`` from now on (trained in place by :meth:`distill`); forgets the warm start."""
        if not isinstance(policy, PolicyNetwork):
            raise ValueError(f"the policy must be a PolicyNetwork, got {type(policy).__name__}")
        if policy.action_dim != self.action_dim or not (
            torch.allclose(policy.action_low.cpu(), self.lower_bound)
            and torch.allclose(policy.action_high.cpu(), self.upper_bound)
        ):
            raise ValueError(f"the policy's action bounds {policy.action_low.tolist()}, {policy.action_high.tolist()} "
                             f"differ from the planner's {self.lower_bound.tolist()}, {self.upper_bound.tolist()}")
        self.policy = policy
        self.reset()

    def ensure_policy(self, state_dim: int) -> PolicyNetwork:
        """The policy, a fresh one of the configured size for ``state_dim`` states when none was set."""
        if self.policy is None:
            self.set_policy(PolicyNetwork(state_dim, self.action_dim, self.lower_bound.tolist(),
                                          self.upper_bound.tolist(), self.hidden_layers, self.hidden_units))
        elif self.policy.state_dim != state_dim:
            raise ValueError(f"the policy takes {self.policy.state_dim} states, the model {state_dim}")
        return self.policy

    def optimize(self, objective: Objective, initial_mean: Tensor, generators=None, deadline=None) -> Tensor:
        """Refused: a POPLIN planner needs the model's predicted states; use :meth:`plan`."""
        raise ValueError(f"{self.name} plans through a model with a policy: call plan(evaluator, states, ...) "
                         "(MPC does so), not optimize(objective, ...)")

    def plan(self, evaluator: TrajectoryEvaluator, states: Tensor, initial_mean: Tensor,
             generators: Generators, deadline: float | None = None) -> Tensor:
        """Plans from ``states`` (B, S) through ``evaluator``'s model; returns action sequences (B, H, A).

        Args:
            evaluator: the returns of candidates through the model.
            states: (B, S) start states.
            initial_mean: (B, H, A) the MPC's warm start; it fixes the batch and the horizon. The POPLIN planners
                start elsewhere: at the policy's proposal (A-Init) or at their own shifted noise or
                perturbation mean (A-Replan, P).
            generators: one per start state.
            deadline: ``time.monotonic()`` after which no new CEM iteration starts.
        """
        policy = self.ensure_policy(evaluator.state_dim).to(states.device)
        with torch.no_grad():
            plan = self._plan(policy, evaluator, states, initial_mean, sampling.as_generators(generators,
                                                                                                 states.shape[0]),
                              deadline)
        self.demonstrations.add(states.cpu().numpy(), plan[:, 0].cpu().numpy())
        return plan

    def _plan(self, policy: PolicyNetwork, evaluator: TrajectoryEvaluator, states: Tensor, initial_mean: Tensor,
              generators: Generators, deadline: float | None) -> Tensor:
        raise NotImplementedError

    def distill(self, config: ImitationConfig | None = None) -> list[float]:
        """Distils the planner into the policy; returns the behaviour-cloning losses per epoch ([] for avg).

        ``bc``: fits the policy to all (state, planned first action) pairs so far. Clears the warm start.
        """
        self.reset()
        if len(self.demonstrations) == 0:
            return []
        config = config or ImitationConfig(epochs=self.distill_epochs)
        return fit_policy(self.ensure_policy(self.demonstrations.states[0].shape[1]),
                          *self.demonstrations.arrays(), config)

    def closed_loop_actions(self, evaluator: TrajectoryEvaluator, states: Tensor, feedback: FeedbackFn,
                            count: int, horizon: int, generators: Generators) -> Tensor:
        """(B, N, H, A) actions of N feedback candidates along the predicted trajectories (mean over particles)."""
        taken: list[Tensor] = []

        def recording(t: int, x: Tensor) -> Tensor:
            actions = feedback(t, x)
            taken.append(actions.mean(dim=2))
            return actions

        evaluator.closed_loop_returns(states, count, horizon, recording, generators)
        return torch.stack(taken, dim=2)

    def _search(self, objective: Objective, mean: Tensor, generators: Generators, deadline: float | None) -> Tensor:
        """CEM over a latent (B, h, D) (noise or perturbations) with ``objective`` (B, N, h, D) -> (B, N)."""

        def safe(population: Tensor) -> Tensor:
            return torch.nan_to_num(objective(population), nan=-torch.inf)

        return CEM._optimize(self, safe, mean, generators, deadline)

    def _gaussian_population(self, mean: Tensor, variance: Tensor, generators: Generators) -> Tensor:
        """(B, N, h, D) unbounded Gaussian samples around ``mean`` (B, h, D)."""
        noise = sampling.normal(generators, (self.population, *mean.shape[1:]), mean.device, mean.dtype)
        return mean.unsqueeze(1) + variance.sqrt().unsqueeze(1) * noise


class PoplinAInit(PolicyGuidedCEM):
    """POPLIN-A-Init: CEM in action space, started at the policy's rollout through the model."""

    name = "poplin_a_init"

    def proposal(self, policy: PolicyNetwork, evaluator: TrajectoryEvaluator, states: Tensor, horizon: int,
                 generators: Generators) -> Tensor:
        """(B, H, A): the policy's actions along its own predicted trajectories (mean over particles)."""
        return self.closed_loop_actions(evaluator, states, lambda t, x: policy(x), 1, horizon, generators)[:, 0]

    def _plan(self, policy: PolicyNetwork, evaluator: TrajectoryEvaluator, states: Tensor, initial_mean: Tensor,
              generators: Generators, deadline: float | None) -> Tensor:
        proposal = self.proposal(policy, evaluator, states, initial_mean.shape[1], generators)
        return Optimizer.optimize(self, lambda sequences: evaluator.returns(states, sequences, generators),
                                  proposal, generators, deadline)


class PoplinAReplan(PolicyGuidedCEM):
    """POPLIN-A-Replan: CEM over noise sequences (B, H, A) added to the policy's action at every predicted state.

    The noise mean is kept between plans and shifted with the receding horizon (zeros fill the end).
    """

    name = "poplin_a_replan"

    def reset(self) -> None:
        self._noise_mean: Tensor | None = None

    def shift(self, steps: int) -> None:
        if self._noise_mean is not None:
            shifted = torch.zeros_like(self._noise_mean)
            if steps < shifted.shape[1]:
                shifted[:, : shifted.shape[1] - steps] = self._noise_mean[:, steps:]
            self._noise_mean = shifted

    def sample_population(self, mean: Tensor, variance: Tensor, generators: Generators) -> Tensor:
        return self._gaussian_population(mean, variance, generators)

    def feedback(self, policy: PolicyNetwork, noise: Tensor) -> FeedbackFn:
        """Actions ``clip(π(x) + noise[:, :, t])`` for noise (B, N, H, A) and particle states x (B, N, P, S)."""
        lower, upper = self.bounds(noise)
        return lambda t, x: torch.maximum(torch.minimum(policy(x) + noise[:, :, t, None, :], upper), lower)

    def _plan(self, policy: PolicyNetwork, evaluator: TrajectoryEvaluator, states: Tensor, initial_mean: Tensor,
              generators: Generators, deadline: float | None) -> Tensor:
        horizon = initial_mean.shape[1]
        mean = self._noise_mean
        if mean is None or mean.shape != initial_mean.shape:
            mean = torch.zeros_like(initial_mean)

        def objective(noise: Tensor) -> Tensor:
            return evaluator.closed_loop_returns(states, noise.shape[1], horizon, self.feedback(policy, noise),
                                                 generators)

        self._noise_mean = self._search(objective, mean, generators, deadline)
        return self.closed_loop_actions(evaluator, states, self.feedback(policy, self._noise_mean[:, None]), 1,
                                        horizon, generators)[:, 0]


class PoplinP(PolicyGuidedCEM):
    """POPLIN-P: CEM over perturbations of the policy's parameter vector θ (P entries).

    Perturbations are (B, N, 1, P) with ``perturbation="uni"`` (one for the whole horizon) and (B, N, H, P)
    with ``"sep"`` (one per step); their distribution starts at mean 0 (or the last plan's, shifted for sep)
    and standard deviation ``parameter_std``.

    Args:
        perturbation: "uni" or "sep".
        parameter_std: first standard deviation of every parameter's perturbation (parameter units).
        distillation: "bc" or "avg" (θ += mean planned perturbation since the last distillation).
        **kwargs: those of :class:`PolicyGuidedCEM` (initial_std is unused: the noise is in parameter space).
    """

    name = "poplin_p"

    def __init__(
        self,
        lower_bound: Sequence[float] | Tensor,
        upper_bound: Sequence[float] | Tensor,
        population: int = 350,
        elites: int | float = 0.1,
        iterations: int = 5,
        alpha: float = 0.1,
        hidden_layers: int = 2,
        hidden_units: int = 64,
        distillation: str = "bc",
        distill_epochs: int = 20,
        perturbation: str = "sep",
        parameter_std: float = 0.1,
    ):
        super().__init__(lower_bound, upper_bound, population, elites, iterations, alpha, 0.25, hidden_layers,
                         hidden_units, distillation, distill_epochs)
        if perturbation not in PERTURBATIONS:
            raise ValueError(f"perturbation must be one of {PERTURBATIONS}, got {perturbation!r}")
        self.perturbation = perturbation
        self.parameter_std = check_fraction("parameter_std", parameter_std)
        self._planned: list[Tensor] = []  # (P,) mean perturbation of each plan since the last distillation

    @classmethod
    def distillations(cls) -> tuple[str, ...]:
        return DISTILLATIONS

    def reset(self) -> None:
        self._perturbation_mean: Tensor | None = None

    def shift(self, steps: int) -> None:
        if self._perturbation_mean is not None and self.perturbation == "sep":
            shifted = torch.zeros_like(self._perturbation_mean)
            if steps < shifted.shape[1]:
                shifted[:, : shifted.shape[1] - steps] = self._perturbation_mean[:, steps:]
            self._perturbation_mean = shifted

    def perturbation_steps(self, horizon: int) -> int:
        """h: 1 for uni, H for sep (perturbation means are (B, h, P), populations (B, N, h, P))."""
        return horizon if self.perturbation == "sep" else 1

    def initial_variance(self, mean: Tensor) -> Tensor:
        return torch.full_like(mean, self.parameter_std**2)

    def sample_population(self, mean: Tensor, variance: Tensor, generators: Generators) -> Tensor:
        return self._gaussian_population(mean, variance, generators)

    def feedback(self, policy: PolicyNetwork, perturbations: Tensor) -> FeedbackFn:
        """Actions ``π_{θ + δ}(x)`` for perturbations (B, N, h, P) and particle states x (B, N, P', S)."""
        theta = policy.parameter_vector().to(perturbations)
        batch, count, steps, size = perturbations.shape

        def act(t: int, x: Tensor) -> Tensor:
            parameters = theta + perturbations[:, :, t if steps > 1 else 0]
            actions = policy.batched_forward(x.reshape(batch * count, x.shape[2], -1),
                                             parameters.reshape(batch * count, size))
            return actions.view(batch, count, x.shape[2], -1)

        return act

    def _plan(self, policy: PolicyNetwork, evaluator: TrajectoryEvaluator, states: Tensor, initial_mean: Tensor,
              generators: Generators, deadline: float | None) -> Tensor:
        horizon = initial_mean.shape[1]
        shape = (states.shape[0], self.perturbation_steps(horizon), policy.parameter_vector().numel())
        mean = self._perturbation_mean
        if mean is None or mean.shape != shape:
            mean = states.new_zeros(shape)

        def objective(perturbations: Tensor) -> Tensor:
            return evaluator.closed_loop_returns(states, perturbations.shape[1], horizon,
                                                 self.feedback(policy, perturbations), generators)

        self._perturbation_mean = self._search(objective, mean, generators, deadline)
        self._planned.append(self._perturbation_mean.mean(dim=(0, 1)).cpu())
        return self.closed_loop_actions(evaluator, states, self.feedback(policy, self._perturbation_mean[:, None]),
                                        1, horizon, generators)[:, 0]

    def distill(self, config: ImitationConfig | None = None) -> list[float]:
        """``bc`` as in :meth:`PolicyGuidedCEM.distill`; ``avg``: θ += the mean planned perturbation."""
        planned, self._planned = self._planned, []
        if self.distillation == "bc":
            return super().distill(config)
        self.reset()
        if planned and self.policy is not None:
            parameters = [p for layer in self.policy.linears for p in (layer.weight, layer.bias)]
            theta = self.policy.parameter_vector().cpu() + torch.stack(planned).mean(dim=0)
            vector_to_parameters(theta.to(parameters[0]), parameters)
        return []
