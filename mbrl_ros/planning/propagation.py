"""Returns of action sequences under a learned model: particles, propagation modes, rewards, terminations.

For B start states and N candidate sequences each, every candidate is followed by P particles; all
B x N x P rows go through the model in one batched forward per time step, whatever the mode:

- ``ts_inf``: each particle is assigned one ensemble member for the whole horizon (PETS TS-inf);
- ``ts1``: the particle-to-member assignment is re-drawn at every step (PETS TS1);
- ``expectation``: one particle per candidate moves to the mean of all members' predictions (PETS E);
- ``members``: one particle per member, particle p always on member p (PDDM's ensemble evaluation);
- ``deterministic``: one particle through a single-member model (the MLP of Nagabandi et al. 2017).

Assignments are balanced as in mbrl-lib: each member receives the same number of rows (padded when the row
count is not a multiple of the ensemble size), so a step is one ``(E, rows / E, D)`` forward. In the
ts modes and ``members``, the next state is drawn from the member's Gaussian when ``sample_aleatoric`` is
set and the model has a variance; ``expectation`` and ``deterministic`` never sample. A step that draws no
noise asks the model for its means alone (``predict_mean``: an ensemble then skips its variance head).

Rewards and terminations are batched task functions of (s, a, s'); a particle earns no reward after the
step on which it terminated. An optional penalty subtracts ``disagreement_penalty`` times the ensemble
disagreement (mean over state dimensions of the standard deviation of the members' predicted means, at
the same input) from every step's reward; a negative weight makes it a bonus (optimism: plans seek what
the members disagree on, to explore). In the ts modes that takes an all-member forward, E times the work of
the plain step.

A disturbance (:meth:`TrajectoryEvaluator.set_disturbance`, one (S,) vector per start state) is added to every
predicted state, scaled by ``decay ** t`` at step t: offset-free MPC's estimate of what the model misses.

On a GPU, ``cuda_graphs`` replays each rollout as a CUDA graph (:mod:`mbrl_ros.planning.cuda_graphs`), captured
on first use for each input shape and again after the model's tensors move. Only rollouts that draw no random
numbers and add no disturbance are captured (``members``, ``expectation`` and ``deterministic`` without
aleatoric sampling; the others run as before). The reward and termination functions must then read nothing but
their arguments and tensors that stay in place (a graph keeps reading the memory it captured); one that
synchronises with the host or copies from it cannot be captured, and the evaluator falls back to running eagerly.
"""

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from mbrl_ros.models.base import DynamicsModel
from mbrl_ros.planning import sampling
from mbrl_ros.planning.cuda_graphs import WARM_UP_RUNS, CapturedCall
from mbrl_ros.planning.sampling import Generators
from mbrl_ros.settings import is_integer, is_number

PROPAGATION_MODES = ("ts_inf", "ts1", "expectation", "members", "deterministic")
RewardFn = Callable[[Tensor, Tensor, Tensor], Tensor]
TerminationFn = Callable[[Tensor], Tensor]
FeedbackFn = Callable[[int, Tensor], Tensor]
MAX_CUDA_GRAPHS = 8  # captured input layouts kept per evaluator; others run eagerly
_LOG = logging.getLogger(__name__)


@dataclass
class Rollout:
    """Predicted trajectories of every particle, as recorded by :meth:`TrajectoryEvaluator.rollout`.

    Attributes:
        states: (B, N, P, H + 1, S) start state then predicted states.
        members: (B, N, P, H) member that predicted each step; -1 where the mean of all members did.
        rewards: (B, N, P, H) reward of each step (before penalty, discount and termination masking).
        disagreement: (B, N, P, H) ensemble disagreement at each step's input (0 for a single member).
        alive: (B, N, P, H) whether the particle had not terminated before the step.
        returns: (B, N) the objective: discounted, penalised, masked rewards, averaged over particles.
    """

    states: Tensor
    members: Tensor
    rewards: Tensor
    disagreement: Tensor
    alive: Tensor
    returns: Tensor


class TrajectoryEvaluator:
    """Turns (start states, action sequences) into predicted returns through a dynamics model.

    Args:
        model: any :class:`~mbrl_ros.models.DynamicsModel` (``predict(state, action) -> (mean, variance)``).
        reward_fn: ``reward(state (R, S), action (R, A), next_state (R, S)) -> (R,)``.
        termination_fn: ``terminated(next_state (R, S)) -> (R,)`` bool, or None for tasks that never end.
        propagation: one of :data:`PROPAGATION_MODES`.
        particles: particles per candidate in the ts modes; the other modes fix it (1, or E for ``members``)
            and reject any other value.
        sample_aleatoric: draw next states from the members' Gaussians (ts modes and ``members``).
        disagreement_penalty: weight (return units per unit of state std) of the disagreement penalty; a
            negative weight rewards disagreement instead.
        discount: per-step discount factor in (0, 1].
        cuda_graphs: replay rollouts on a CUDA device as CUDA graphs where they can be (see the module's notes).
    """

    def __init__(
        self,
        model: DynamicsModel,
        reward_fn: RewardFn,
        termination_fn: TerminationFn | None = None,
        propagation: str = "ts_inf",
        particles: int | None = None,
        sample_aleatoric: bool = True,
        disagreement_penalty: float = 0.0,
        discount: float = 1.0,
        cuda_graphs: bool = False,
    ):
        if propagation not in PROPAGATION_MODES:
            raise ValueError(f"unknown propagation {propagation!r}; choose from {list(PROPAGATION_MODES)}")
        if not callable(reward_fn) or (termination_fn is not None and not callable(termination_fn)):
            raise ValueError("reward_fn and termination_fn must be callables")
        if not (is_number(disagreement_penalty) and math.isfinite(disagreement_penalty)):
            raise ValueError(f"disagreement_penalty must be a finite number, got {disagreement_penalty!r}")
        if not (is_number(discount) and 0 < discount <= 1):
            raise ValueError(f"discount must be in (0, 1], got {discount!r}")
        self.propagation = propagation
        self.reward_fn, self.termination_fn = reward_fn, termination_fn
        self.requested_particles = particles
        self.sample_aleatoric = bool(sample_aleatoric)
        self.disagreement_penalty = float(disagreement_penalty)
        self.discount = float(discount)
        self.model_steps = 0  # (member, row) forward evaluations so far
        self.disturbance: Tensor | None = None  # (B, S) added to every predicted state (set_disturbance)
        self.disturbance_decay = 1.0
        self.cuda_graphs = bool(cuda_graphs)
        self.graph_replays = 0  # rollouts replayed from a captured graph so far
        self.graph_captures = 0  # graphs captured so far
        self._graphs: dict[tuple, tuple[CapturedCall, int]] = {}  # layout -> (graph, model steps per replay)
        self.set_model(model)

    def set_disturbance(self, disturbance: Tensor | None, decay: float = 1.0) -> None:
        """Adds ``disturbance`` (B, S) (one vector per start state, state units) times ``decay ** t`` to every
        state predicted at step t = 0, 1, ... of the rollouts that follow; None: no disturbance."""
        if not (is_number(decay) and 0 <= decay <= 1):
            raise ValueError(f"the disturbance decay must be in [0, 1], got {decay!r}")
        if disturbance is not None and (disturbance.ndim != 2 or disturbance.shape[1] != self.state_dim
                                        or not torch.isfinite(disturbance).all()):
            raise ValueError(f"the disturbance must be a finite (B, {self.state_dim}) tensor, got "
                             f"{tuple(disturbance.shape)}")
        self.disturbance, self.disturbance_decay = disturbance, float(decay)

    def set_model(self, model: DynamicsModel) -> None:
        """Uses ``model`` from now on; checks that it fits the propagation mode and particle count.

        Once rollouts have been captured as CUDA graphs, a model of the same class and architecture is copied into
        the model in use (:attr:`model` stays the same object) so that the graphs stay valid: capturing them again
        takes about 30 plans' time.
        """
        for attribute in ("predict", "state_dim", "action_dim", "ensemble_size"):
            if not hasattr(model, attribute):
                raise ValueError(f"the model lacks {attribute!r}: it must follow the DynamicsModel contract")
        ensemble = model.ensemble_size
        fixed = {"expectation": 1, "deterministic": 1, "members": ensemble}.get(self.propagation)
        if self.propagation == "deterministic" and ensemble != 1:
            raise ValueError(f"propagation 'deterministic' needs a single-member model, this one has {ensemble}; "
                             "use 'expectation', 'members' or a ts mode for an ensemble")
        if fixed is None:
            particles = 20 if self.requested_particles is None else self.requested_particles
            if not is_integer(particles) or particles < 1:
                raise ValueError(f"particles must be a positive integer, got {particles!r}")
        else:
            if self.requested_particles not in (None, fixed):
                raise ValueError(f"propagation {self.propagation!r} uses {fixed} particle(s) per candidate with "
                                 f"this model, got particles={self.requested_particles}")
            particles = fixed
        if self._graphs and self._same_layout(model):
            self.model.load_state_dict(model.state_dict())  # into the captured tensors
            return
        self.model, self.particles = model, particles
        self._graphs.clear()

    def _same_layout(self, model: DynamicsModel) -> bool:
        """Whether ``model`` is built as the model in use: same class and architecture (the constructor's
        arguments, which fix every tensor's shape)."""
        current = self.model
        return (type(model) is type(current) and callable(getattr(model, "architecture", None))
                and model.architecture() == current.architecture())

    @property
    def state_dim(self) -> int:
        return self.model.state_dim

    @property
    def action_dim(self) -> int:
        return self.model.action_dim

    def returns(self, states: Tensor, action_sequences: Tensor, generators: Generators) -> Tensor:
        """Predicted returns (B, N) of ``action_sequences`` (B, N, H, A) from ``states`` (B, S)."""
        return self._run_graphed(states, action_sequences, generators, record=False)[0]

    def closed_loop_returns(self, states: Tensor, count: int, horizon: int, feedback: FeedbackFn,
                            generators: Generators) -> Tensor:
        """Predicted returns (B, N) of N feedback controllers per start state ``states`` (B, S).

        Args:
            states: (B, S) start states.
            count: N, candidates per start state.
            horizon: H, steps.
            feedback: ``feedback(t, x)`` maps step t and the predicted states x (B, N, P, S) of every particle
                to their actions (B, N, P, A) (POPLIN's policy-guided candidates).
            generators: one per start state.
        """
        return self._run(states, (count, horizon, feedback), generators, record=False)[0]

    def rollout(self, states: Tensor, action_sequences: Tensor, generators: Generators) -> Rollout:
        """Like :meth:`returns`, keeping every particle's trajectory and the disagreement at every step.

        The disagreement is measured with all members at each particle's input (one extra all-member
        forward per step in the ts modes), so it is meant for few candidates (the chosen plan, tests).
        """
        return self._run_graphed(states, action_sequences, generators, record=True)[1]

    def _run_graphed(self, states: Tensor, action_sequences: Tensor, generators: Generators,
                     record: bool) -> tuple[Tensor, Rollout | None]:
        """:meth:`_run`, replayed from a CUDA graph where :attr:`cuda_graphs` allows it."""
        if not self._graphable(states, action_sequences):
            return self._run(states, action_sequences, generators, record)
        self._check_inputs(states, action_sequences)
        key = (tuple(states.shape), tuple(action_sequences.shape), states.dtype, action_sequences.dtype,
               states.device, record)
        inputs, watched = (states, action_sequences), [*self.model.parameters(), *self.model.buffers()]
        entry = self._graphs.get(key)
        if entry is None or not entry[0].fits(inputs, watched):
            if entry is None and len(self._graphs) >= MAX_CUDA_GRAPHS:
                return self._run(states, action_sequences, generators, record)

            def flat_run(s: Tensor, a: Tensor) -> tuple[Tensor, ...]:
                returns, rollout = self._run(s, a, generators, record)
                return (returns,) if rollout is None else (returns, rollout.states, rollout.members, rollout.rewards,
                                                           rollout.disagreement, rollout.alive)

            steps_before = self.model_steps
            try:
                graph = CapturedCall(flat_run, inputs, watched)
            except RuntimeError as error:
                _LOG.warning("rollouts run eagerly: they cannot be captured as a CUDA graph (%s)", error)
                self.cuda_graphs, self.model_steps = False, steps_before
                self._graphs.clear()
                return self._run(states, action_sequences, generators, record)
            self.graph_captures += 1
            entry = self._graphs[key] = (graph, (self.model_steps - steps_before) // (1 + WARM_UP_RUNS))
            self.model_steps = steps_before
        graph, model_steps = entry
        flat = graph(*inputs)
        self.model_steps += model_steps
        self.graph_replays += 1
        return flat[0], (None if not record else Rollout(*flat[1:], returns=flat[0]))

    @property
    def rollouts_are_replayable(self) -> bool:
        """Whether rollouts are what a captured graph can replay, whatever the device: they draw no random numbers
        (no member assignment, no aleatoric noise) and add no disturbance."""
        draws = self.propagation in ("ts_inf", "ts1") or (self.sample_aleatoric and self.propagation == "members")
        return not draws and self.disturbance is None and isinstance(self.model, torch.nn.Module)

    def _graphable(self, states: Tensor, action_sequences: Tensor) -> bool:
        """Whether a rollout from these inputs replays a CUDA graph."""
        return (self.cuda_graphs and states.device.type == "cuda" and isinstance(action_sequences, Tensor)
                and self.rollouts_are_replayable and not torch.cuda.is_current_stream_capturing())

    @torch.no_grad()
    def _run(self, states: Tensor, action_sequences: Tensor | tuple[int, int, FeedbackFn], generators: Generators,
             record: bool) -> tuple[Tensor, Rollout | None]:
        """Propagates all rows; returns the (B, N) returns and, with ``record``, the whole rollout.

        ``action_sequences`` is (B, N, H, A), or (N, H, feedback) for actions chosen from predicted states.
        """
        feedback = None
        if isinstance(action_sequences, tuple):
            count, horizon, feedback = action_sequences
            batch = self._check_inputs(states, states.new_empty(states.shape[0], count, horizon, self.action_dim))[0]
        else:
            batch, count, horizon, _ = self._check_inputs(states, action_sequences)
        particles, size = self.particles, self.state_dim
        rows = batch * count * particles
        generators = sampling.as_generators(generators, batch)
        x = states[:, None, None, :].expand(batch, count, particles, size).reshape(rows, size)
        alive = torch.ones(rows, dtype=torch.bool, device=x.device)
        total = torch.zeros(rows, dtype=x.dtype, device=x.device)
        need_disagreement = record or self.disagreement_penalty != 0
        assignment = self._assign(generators, batch, count * particles, x.device)
        disturbance = self._disturbance_rows(batch, count * particles)
        history: dict[str, list[Tensor]] = {"states": [x], "members": [], "rewards": [], "disagreement": [],
                                            "alive": []}
        for t in range(horizon):
            if self.propagation == "ts1" and t > 0:
                assignment = self._assign(generators, batch, count * particles, x.device)
            if feedback is None:
                action = action_sequences[:, :, t, None, :].expand(-1, -1, particles, -1).reshape(rows, -1)
            else:
                action = feedback(t, x.view(batch, count, particles, size)).reshape(rows, -1)
            next_x, members, disagreement = self._step(x, action, assignment, generators, batch,
                                                       need_disagreement, first=t == 0)
            if disturbance is not None:
                next_x = next_x + (self.disturbance_decay**t) * disturbance
            reward = self.reward_fn(x, action, next_x)
            if reward.shape != (rows,):
                raise ValueError(f"reward_fn returned shape {tuple(reward.shape)} for {rows} transitions; "
                                 f"expected ({rows},)")
            penalised = reward - self.disagreement_penalty * disagreement if self.disagreement_penalty != 0 else reward
            total += (self.discount**t) * torch.where(alive, penalised, torch.zeros_like(penalised))
            if record:
                for key, value in (("members", members), ("rewards", reward), ("disagreement", disagreement),
                                   ("alive", alive.clone()), ("states", next_x)):
                    history[key].append(value)
            if self.termination_fn is not None:
                done = self.termination_fn(next_x)
                if done.shape != (rows,) or done.dtype != torch.bool:
                    raise ValueError(f"termination_fn must return a bool tensor ({rows},), got "
                                     f"{done.dtype} {tuple(done.shape)}")
                alive &= ~done
            x = next_x
        returns = total.view(batch, count, particles).mean(dim=-1)
        if not record:
            return returns, None

        def stacked(key: str) -> Tensor:
            return torch.stack(history[key], dim=-1).view(batch, count, particles, -1)

        trajectories = torch.stack(history["states"], dim=1).view(batch, count, particles, horizon + 1, size)
        return returns, Rollout(trajectories, stacked("members"), stacked("rewards"), stacked("disagreement"),
                                stacked("alive"), returns)

    def _disturbance_rows(self, batch: int, rows_per_problem: int) -> Tensor | None:
        """The disturbance of each (b, n, p)-ordered row, (R, S), or None."""
        if self.disturbance is None:
            return None
        if self.disturbance.shape[0] != batch:
            raise ValueError(f"the disturbance is set for {self.disturbance.shape[0]} start state(s), the rollout "
                             f"has {batch}")
        return self.disturbance.repeat_interleave(rows_per_problem, dim=0)

    def _check_inputs(self, states: Tensor, action_sequences: Tensor) -> tuple[int, int, int, int]:
        if states.ndim != 2 or states.shape[1] != self.state_dim:
            raise ValueError(f"states must be (B, {self.state_dim}), got {tuple(states.shape)}")
        if (action_sequences.ndim != 4 or action_sequences.shape[0] != states.shape[0]
                or action_sequences.shape[3] != self.action_dim):
            raise ValueError(f"action sequences must be (B={states.shape[0]}, N, H, {self.action_dim}), "
                             f"got {tuple(action_sequences.shape)}")
        return tuple(action_sequences.shape)

    def _assign(self, generators: Generators, batch: int, rows_per_problem: int,
                device: torch.device) -> tuple[Tensor, Tensor, int] | None:
        """Balanced random particle-to-member assignment of the ts modes.

        Returns (slot, member, block): row r of the (b, n, p)-ordered rows goes to ``slot[r]`` of a buffer
        viewed as (E, B * block, D), i.e. to ``member[r]``; None when there is nothing to assign.
        """
        ensemble = self.model.ensemble_size
        if self.propagation not in ("ts1", "ts_inf") or ensemble == 1:
            return None
        block = math.ceil(rows_per_problem / ensemble)
        local = sampling.permutations(generators, ensemble * block, device)[:, :rows_per_problem]
        member = torch.div(local, block, rounding_mode="floor")
        problem = torch.arange(batch, device=device)[:, None]
        slot = member * (batch * block) + problem * block + local % block
        return slot.reshape(-1), member.reshape(-1), block

    def _predict(self, state: Tensor, action: Tensor) -> tuple[Tensor, Tensor | None]:
        """The model's (mean, variance), (E, ·, S) each; the variance only where a step draws from it."""
        if self.sample_aleatoric and self.propagation in ("ts_inf", "ts1", "members"):
            return self.model.predict(state, action)
        return self.model.predict_mean(state, action), None

    def _step(self, x: Tensor, action: Tensor, assignment: tuple[Tensor, Tensor, int] | None,
              generators: Generators, batch: int, need_disagreement: bool,
              first: bool) -> tuple[Tensor, Tensor, Tensor]:
        """One model step of all rows: (next state (R, S), member (R,), disagreement (R,)).

        On the first step the P particles of a candidate share state and action, so with more particles
        than members each (candidate, member) pair is evaluated once (E instead of P rows per candidate).
        """
        rows, ensemble, mode = x.shape[0], self.model.ensemble_size, self.propagation
        zeros = torch.zeros(rows, dtype=x.dtype, device=x.device)
        if first and assignment is not None and ensemble < self.particles:
            candidates = rows // self.particles
            means, variances = self._predict(x[:: self.particles], action[:: self.particles])  # (E, C, S)
            self.model_steps += ensemble * candidates
            members = assignment[1]
            candidate = torch.arange(rows, device=x.device) // self.particles
            mean = means[members, candidate]
            variance = None if variances is None else variances[members, candidate]
            disagreement = _member_spread(means).repeat_interleave(self.particles) if need_disagreement else zeros
        elif mode == "members":
            per_member = (rows // ensemble, ensemble)
            mean, variance = self._predict(x.view(*per_member, -1).transpose(0, 1),
                                           action.view(*per_member, -1).transpose(0, 1))
            disagreement = _member_spread(mean).repeat_interleave(ensemble) if need_disagreement else zeros
            mean, variance = (None if v is None else v.transpose(0, 1).reshape(rows, -1) for v in (mean, variance))
            members = torch.arange(ensemble, device=x.device).repeat(rows // ensemble)
            self.model_steps += rows
        elif mode in ("expectation", "deterministic") or assignment is None or need_disagreement:
            means, variances = self._predict(x, action)  # (E, R, S): every member on every row
            self.model_steps += ensemble * rows
            disagreement = _member_spread(means) if ensemble > 1 and need_disagreement else zeros
            if mode in ("expectation", "deterministic"):
                mean, variance = means.mean(dim=0), None
                members = torch.full((rows,), -1 if mode == "expectation" else 0, device=x.device)
            elif assignment is None:
                mean, variance = means[0], None if variances is None else variances[0]
                members = torch.zeros(rows, dtype=torch.long, device=x.device)
            else:
                members = assignment[1]
                index = members[None, :, None].expand(1, rows, means.shape[-1])
                mean = means.gather(0, index)[0]
                variance = None if variances is None else variances.gather(0, index)[0]
        else:
            slot, members, block = assignment
            width = ensemble * batch * block
            inputs_x = x.new_zeros(width, x.shape[1]) if width > rows else x.new_empty(width, x.shape[1])
            inputs_a = (action.new_zeros if width > rows else action.new_empty)(width, action.shape[1])
            inputs_x[slot], inputs_a[slot] = x, action
            mean, variance = self._predict(inputs_x.view(ensemble, batch * block, -1),
                                           inputs_a.view(ensemble, batch * block, -1))
            mean = mean.reshape(width, -1)[slot]
            variance = None if variance is None else variance.reshape(width, -1)[slot]
            disagreement = zeros
            self.model_steps += width
        if self.sample_aleatoric and variance is not None:
            noise = sampling.normal(generators, (rows // batch, mean.shape[-1]), x.device, x.dtype)
            mean = mean + variance.sqrt() * noise.view(rows, -1)
        return mean, members, disagreement


def _member_spread(means: Tensor) -> Tensor:
    """(E, R, S) member predictions -> (R,) mean over S of their standard deviation over members."""
    centred = means - means.mean(dim=0)
    return centred.square().mean(dim=0).sqrt().mean(dim=-1)
