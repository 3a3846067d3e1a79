"""Receding-horizon model predictive control: plan with an optimizer through a model, act, shift, replan.

:class:`MPC` plans for one state (S,) or for a batch of B states (B, S) at once; problem b draws its random
numbers from its own generator, so a batch gives the same actions as B separate controllers with the same
seeds. Everything is chosen by name in a :class:`MPCConfig` (a plain mapping in YAML or ROS parameters).
"""

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from mbrl_ros.models.base import DynamicsModel
from mbrl_ros.planning.optimizer import check_positive_int
from mbrl_ros.planning.poplin import PolicyGuidedCEM
from mbrl_ros.planning.propagation import PROPAGATION_MODES, RewardFn, TerminationFn, TrajectoryEvaluator
from mbrl_ros.planning.registry import PLANNERS, make_optimizer
from mbrl_ros.planning.sampling import make_generators
from mbrl_ros.policies.network import PolicyNetwork
from mbrl_ros.settings import dataclass_from_dict, is_integer, is_number


@dataclass(frozen=True)
class MPCConfig:
    """How an :class:`MPC` plans.

    Attributes:
        horizon: H, steps per planned action sequence.
        optimizer: a name in :data:`mbrl_ros.planning.registry.PLANNERS` (POPLIN's included).
        optimizer_params: keyword parameters of that optimizer (population, iterations, ...).
        propagation: a mode in :data:`mbrl_ros.planning.propagation.PROPAGATION_MODES`.
        particles: particles per candidate for the ts modes (default 20); None for the other modes.
        sample_aleatoric: sample next states from the members' Gaussians.
        replan_every: actions of a plan that :meth:`MPC.act` executes before it plans again.
        warm_start: start each plan from the last one shifted by the steps taken since (else from the
            middle of the action bounds).
        cold_start_iterations: optimizer iterations of a plan that starts from the middle of the bounds (an
            episode's first plan, or every plan without ``warm_start``), which has no earlier plan to refine;
            None: the optimizer's own ``iterations``. Only for optimizers with iterations (not random shooting).
        cold_start_population: sequences sampled per iteration of such a plan, its elites (if the optimizer has
            any) scaled by the same factor; None: the optimizer's own ``population``.
        disagreement_penalty: weight of the ensemble-disagreement penalty on rewards (0: off; < 0: a bonus).
        discount: per-step discount of predicted rewards.
        offset_correction: offset-free MPC: the model's error on the last control step (the state reached minus
            the members' mean prediction from the last plan's start state and first action) is added to every
            predicted state of the next plan, as a disturbance that persists (Pannocchia and Rawlings 2003). It
            assumes that the last plan's first action was executed, one control step ago (``shift_steps`` 1).
        offset_decay: the disturbance added at predicted step t is scaled by ``offset_decay ** t`` (1: constant).
        seed: seed of the planner's random numbers: an int (problem b of a batch uses seed + b), one int per
            problem, or None (random).
        device: torch device of the planning computation ("cpu", "cuda", "cuda:1", ...).
        cuda_graphs: on a CUDA device, replay each rollout as a CUDA graph (one launch instead of hundreds of small
            kernels; see :mod:`mbrl_ros.planning.propagation` for the modes it covers and what it asks of the
            reward function). Ignored on the CPU.
    """

    horizon: int = 15
    optimizer: str = "cem"
    optimizer_params: Mapping[str, Any] = field(default_factory=dict)
    propagation: str = "ts_inf"
    particles: int | None = None
    sample_aleatoric: bool = True
    replan_every: int = 1
    warm_start: bool = True
    cold_start_iterations: int | None = None
    cold_start_population: int | None = None
    disagreement_penalty: float = 0.0
    discount: float = 1.0
    offset_correction: bool = False
    offset_decay: float = 1.0
    seed: int | Sequence[int] | None = None
    device: str = "cpu"
    cuda_graphs: bool = False

    def __post_init__(self):
        check_positive_int("horizon", self.horizon)
        check_positive_int("replan_every", self.replan_every)
        if self.replan_every > self.horizon:
            raise ValueError(f"replan_every ({self.replan_every}) cannot exceed the horizon ({self.horizon})")
        if self.optimizer not in PLANNERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose from {sorted(PLANNERS)}")
        if not isinstance(self.optimizer_params, Mapping):
            raise ValueError(f"optimizer_params must be a mapping, got {type(self.optimizer_params).__name__}")
        if self.propagation not in PROPAGATION_MODES:
            raise ValueError(f"unknown propagation {self.propagation!r}; choose from {list(PROPAGATION_MODES)}")
        if self.particles is not None:
            check_positive_int("particles", self.particles)
        for name in ("cold_start_iterations", "cold_start_population"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        if not (is_number(self.offset_decay) and 0 <= self.offset_decay <= 1):
            raise ValueError(f"offset_decay must be in [0, 1], got {self.offset_decay!r}")
        for name in ("sample_aleatoric", "warm_start", "offset_correction", "cuda_graphs"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        seeds = self.seed if isinstance(self.seed, Sequence) and not isinstance(self.seed, str) else [self.seed]
        if self.seed is not None and not all(is_integer(s) for s in seeds):
            raise ValueError(f"seed must be an integer, a list of integers (one per state) or None, got {self.seed!r}")
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError) as error:
            raise ValueError(f"invalid device {self.device!r}: {error}") from None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "MPCConfig":
        """Builds a config from a mapping (a YAML section or a node's ``mpc.*`` parameters): an unknown key or a
        value of the wrong type is a ValueError naming the setting; ``null`` sets an optional one to None."""
        if not isinstance(values, Mapping):
            raise ValueError(f"an MPC config must be a mapping, got {type(values).__name__}")
        return dataclass_from_dict(cls, values, "MPC")


@dataclass
class PlanStats:
    """Statistics of the last plan, for a controller to publish (``PlannerStatus``).

    Attributes:
        planner: optimizer name.
        iterations: optimizer iterations run.
        plan_time: wall time of the plan (seconds).
        evaluations: candidate sequences evaluated per problem.
        model_steps: (member, row) model evaluations of the plan, all problems together.
        predicted_returns: (B,) predicted return of each problem's plan (mean over particles).
        disagreements: (B,) ensemble disagreement along each plan (mean over steps and particles of the
            mean over state dimensions of the members' standard deviation).
    """

    planner: str
    iterations: int
    plan_time: float
    evaluations: int
    model_steps: int
    predicted_returns: Tensor
    disagreements: Tensor

    @property
    def predicted_return(self) -> float:
        """Mean predicted return over the batch."""
        return float(self.predicted_returns.mean())

    @property
    def disagreement(self) -> float:
        """Mean disagreement over the batch."""
        return float(self.disagreements.mean())


def shift_plan(plan: Tensor, steps: int, fill: Tensor) -> Tensor:
    """Moves plans (B, H, A) ``steps`` steps forward: step i takes step i + steps, the last steps ``fill``.

    Args:
        plan: (B, H, A) action sequences.
        steps: time steps elapsed, >= 0.
        fill: (B, H, A) or (H, A); its last ``steps`` steps fill the end.
    """
    shifted = fill.expand_as(plan).clone()
    horizon = plan.shape[1]
    if steps < horizon:
        shifted[:, : horizon - steps] = plan[:, steps:]
    return shifted


@contextmanager
def cold_start(optimizer: Any, config: MPCConfig) -> Iterator[None]:
    """Runs ``optimizer`` at ``config``'s ``cold_start_iterations`` and ``cold_start_population`` (its elites, if
    it has any, scaled with the population) where they are set, for a plan with no warm start to build on."""
    settings = {}
    if config.cold_start_iterations is not None:
        settings["iterations"] = config.cold_start_iterations
    if config.cold_start_population is not None:
        population = config.cold_start_population
        settings["population"] = population
        if hasattr(optimizer, "elites"):
            settings["elites"] = min(max(round(optimizer.elites * population / optimizer.population), 1), population)
    own = {name: getattr(optimizer, name) for name in settings}
    for name, value in settings.items():
        setattr(optimizer, name, value)
    try:
        yield
    finally:
        for name, value in own.items():
            setattr(optimizer, name, value)


class MPC:
    """A receding-horizon controller: :meth:`plan` an action sequence, :meth:`act` its first action(s).

    Args:
        model: dynamics model (moved to the config's device).
        reward_fn: batched ``reward(state, action, next_state) -> (R,)`` of the task.
        action_low: (A,) lowest action.
        action_high: (A,) highest action.
        config: an :class:`MPCConfig` or a mapping of its fields; None: defaults.
        termination_fn: batched ``terminated(next_state) -> (R,)`` bool, or None.
        policy: the policy of a POPLIN optimizer (a fresh one of the optimizer's size when None).
        **overrides: fields of :class:`MPCConfig` replacing those of ``config``.
    """

    def __init__(
        self,
        model: DynamicsModel,
        reward_fn: RewardFn,
        action_low: Sequence[float] | Tensor,
        action_high: Sequence[float] | Tensor,
        config: MPCConfig | Mapping[str, Any] | None = None,
        *,
        termination_fn: TerminationFn | None = None,
        policy: PolicyNetwork | None = None,
        **overrides: Any,
    ):
        if isinstance(config, MPCConfig):
            config = asdict(config)
        self.config = MPCConfig.from_dict({**(config or {}), **overrides})
        self.device = torch.device(self.config.device)
        self.optimizer = make_optimizer(self.config.optimizer, action_low, action_high, **self.config.optimizer_params)
        for name, attribute in (("cold_start_iterations", "iterations"), ("cold_start_population", "population")):
            if getattr(self.config, name) is not None and not hasattr(self.optimizer, attribute):
                raise ValueError(f"{name} needs an optimizer with {attribute}; {self.config.optimizer!r} has none")
        self._check_model(model)
        self.evaluator = TrajectoryEvaluator(
            model.to(self.device), reward_fn, termination_fn, self.config.propagation, self.config.particles,
            self.config.sample_aleatoric, self.config.disagreement_penalty, self.config.discount,
            self.config.cuda_graphs,
        )
        self.last_stats: PlanStats | None = None
        if isinstance(self.optimizer, PolicyGuidedCEM):
            if policy is not None:
                self.optimizer.set_policy(policy)
            self.optimizer.ensure_policy(model.state_dim)
        elif policy is not None:
            raise ValueError(f"optimizer {self.config.optimizer!r} takes no policy; the POPLIN ones do")
        self.reset(self.config.seed)

    @classmethod
    def from_config(
        cls,
        model: DynamicsModel,
        reward_fn: RewardFn,
        action_low: Sequence[float] | Tensor,
        action_high: Sequence[float] | Tensor,
        config: Mapping[str, Any],
        termination_fn: TerminationFn | None = None,
    ) -> "MPC":
        """An MPC from a plain mapping (YAML); unknown or invalid settings raise ValueError."""
        return cls(model, reward_fn, action_low, action_high, MPCConfig.from_dict(config),
                   termination_fn=termination_fn)

    @property
    def horizon(self) -> int:
        return self.config.horizon

    @property
    def state_dim(self) -> int:
        return self.evaluator.state_dim

    @property
    def action_dim(self) -> int:
        return self.optimizer.action_dim

    @property
    def model(self) -> DynamicsModel:
        return self.evaluator.model

    @property
    def policy(self) -> PolicyNetwork | None:
        """The policy of a POPLIN optimizer (distilled in place by ``optimizer.distill()``), else None."""
        return self.optimizer.policy if isinstance(self.optimizer, PolicyGuidedCEM) else None

    def reset(self, seed: int | Sequence[int] | None = None) -> None:
        """Starts a new episode: forgets the last plan and warm start, and reseeds.

        Args:
            seed: an int (problem b of a batch uses ``seed + b``), one seed per problem, or None (random).
        """
        if seed is not None and not isinstance(seed, int):
            seed = [int(s) for s in seed]
        self._seed = seed
        self._generators: list[torch.Generator] | None = None
        self._plan: Tensor | None = None  # (B, H, A) last plan
        self._plan_states: Tensor | None = None  # (B, S) the states it started from
        self.evaluator.set_disturbance(None)
        self._executed = 0  # actions of the last plan executed by act()
        self.optimizer.reset()

    def set_model(self, model: DynamicsModel) -> None:
        """Plans with ``model`` from the next plan on (the warm start is kept); rejects unfit models.

        Not thread-safe with a running :meth:`plan`: a controller swaps models between plans.

        Raises:
            ValueError: the model's dimensions differ, it has non-finite parameters, or it does not suit the
                propagation mode (e.g. an ensemble for 'deterministic').
        """
        self._check_model(model)
        if (model.state_dim, model.action_dim) != (self.state_dim, self.action_dim):
            raise ValueError(f"the new model maps (S={model.state_dim}, A={model.action_dim}); the controller "
                             f"plans for (S={self.state_dim}, A={self.action_dim})")
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise ValueError(f"the new model has non-finite values in {name}")
        self.evaluator.set_model(model.to(self.device))

    def warm_start_mean(self, batch: int, shift_steps: int) -> Tensor:
        """(B, H, A) initial mean of the next plan: the last plan shifted by ``shift_steps``, or the default."""
        default = self.optimizer.default_mean(self.horizon, self.device).expand(batch, -1, -1)
        if self._starts_cold():
            return default.clone()
        return shift_plan(self._plan, shift_steps, default)

    def plan(self, state: Tensor | Sequence[float], shift_steps: int | None = None,
             deadline: float | None = None) -> Tensor:
        """Optimizes an action sequence from ``state``.

        Args:
            state: (S,) or (B, S), in the model's units.
            shift_steps: control steps elapsed since the last plan's start state, to shift its warm start;
                None: the actions :meth:`act` has executed from it.
            deadline: ``time.monotonic()`` after which the optimizer starts no new iteration.

        Returns:
            (H, A), or (B, H, A) for a batch of states: the plan, within the action bounds.
        """
        states, batched = self._check_state(state)
        batch = states.shape[0]
        generators = self._generators_for(batch)
        steps = self._executed if shift_steps is None else shift_steps
        if not is_integer(steps) or steps < 0:
            raise ValueError(f"shift_steps must be an integer >= 0, got {steps!r}")
        start, model_steps = time.perf_counter(), self.evaluator.model_steps
        initial_mean = self.warm_start_mean(batch, steps)
        cold = self._starts_cold()
        if not self.config.warm_start:
            self.optimizer.reset()  # nothing carried over, iCEM's elites included
        elif self._plan is not None and steps > 0:
            self.optimizer.shift(steps)
        with torch.no_grad(), cold_start(self.optimizer, self.config) if cold else nullcontext():
            if self.config.offset_correction:
                self._estimate_disturbance(states, steps)
            if isinstance(self.optimizer, PolicyGuidedCEM):
                plan = self.optimizer.plan(self.evaluator, states, initial_mean, generators, deadline)
            else:
                plan = self.optimizer.optimize(
                    lambda sequences: self.evaluator.returns(states, sequences, generators),
                    initial_mean, generators, deadline,
                )
            lower, upper = self.optimizer.bounds(plan)
            plan = torch.maximum(torch.minimum(plan, upper), lower)
            rollout = self.evaluator.rollout(states, plan[:, None], generators)
        stats = self.optimizer.last_stats
        self.last_stats = PlanStats(
            planner=self.optimizer.name, iterations=stats.iterations, plan_time=time.perf_counter() - start,
            evaluations=stats.evaluations, model_steps=self.evaluator.model_steps - model_steps,
            predicted_returns=rollout.returns[:, 0].cpu(), disagreements=rollout.disagreement.mean(dim=(1, 2, 3)).cpu(),
        )
        self._plan, self._plan_states, self._executed = plan, states, 0
        return plan.clone() if batched else plan[0].clone()

    def _starts_cold(self) -> bool:
        """Whether the next plan starts from the middle of the bounds: no warm start, or no plan yet."""
        return not self.config.warm_start or self._plan is None

    def _estimate_disturbance(self, states: Tensor, steps: int) -> None:
        """Offset-free MPC: the disturbance of the next rollouts from the model's error on the last step.

        One control step after the last plan (``steps`` 1) it is ``states`` minus the members' mean prediction
        from that plan's start states and first action; with no step since, the last estimate stays; otherwise
        (a new episode, a gap) there is none.
        """
        same_problems = self._plan_states is not None and self._plan_states.shape == states.shape
        if steps == 0 and same_problems:
            return
        if steps != 1 or not same_problems:
            self.evaluator.set_disturbance(None)
            return
        predicted = self.evaluator.model.predict_mean(self._plan_states, self._plan[:, 0]).mean(dim=0)
        disturbance = states - predicted
        self.evaluator.set_disturbance(disturbance if torch.isfinite(disturbance).all() else None,
                                       self.config.offset_decay)

    def act(self, state: Tensor | Sequence[float]) -> Tensor:
        """The action for ``state`` (S,) -> (A,), or for a batch (B, S) -> (B, A).

        Plans when no plan is left (every ``replan_every`` calls), warm-started from the previous plan
        shifted by the actions executed since; otherwise returns the next action of the current plan.
        """
        states, batched = self._check_state(state)
        if self._plan is None or self._executed >= self.config.replan_every:
            self.plan(states)
        elif self._plan.shape[0] != states.shape[0]:
            raise ValueError(f"the controller plans for {self._plan.shape[0]} state(s), got {states.shape[0]}; "
                             "call reset() to change the batch size")
        action = self._plan[:, self._executed].clone()
        self._executed += 1
        return action if batched else action[0]

    def _check_model(self, model: DynamicsModel) -> None:
        if not isinstance(model, DynamicsModel):
            raise ValueError(f"the model must be a mbrl_ros.models.DynamicsModel, got {type(model).__name__}")
        if model.action_dim != self.optimizer.action_dim:
            raise ValueError(f"the model takes {model.action_dim} action dimension(s), the bounds give "
                             f"{self.optimizer.action_dim}")

    def _check_state(self, state: Tensor | Sequence[float]) -> tuple[Tensor, bool]:
        states = torch.as_tensor(state, dtype=torch.float32, device=self.device)
        batched = states.ndim == 2
        if states.ndim not in (1, 2) or states.shape[-1] != self.state_dim or states.numel() == 0:
            raise ValueError(f"the state must be ({self.state_dim},) or (B, {self.state_dim}), "
                             f"got {tuple(states.shape)}")
        if not torch.isfinite(states).all():
            raise ValueError("the state has non-finite entries")
        return (states if batched else states.unsqueeze(0)), batched

    def _generators_for(self, batch: int) -> list[torch.Generator]:
        if self._generators is None:
            if self._seed is None:
                seeds = [torch.Generator().seed() % 2**63 for _ in range(batch)]
            elif isinstance(self._seed, int):
                seeds = [self._seed + b for b in range(batch)]
            else:
                seeds = self._seed
            if len(seeds) != batch:
                raise ValueError(f"{len(seeds)} seeds were given for {batch} state(s)")
            self._generators = make_generators(seeds, self.device)
        elif len(self._generators) != batch:
            raise ValueError(f"the controller plans for {len(self._generators)} state(s), got {batch}; "
                             "call reset() to change the batch size")
        return self._generators

