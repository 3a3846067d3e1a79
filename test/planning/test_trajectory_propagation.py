"""Propagation semantics of TrajectoryEvaluator, checked on predicted trajectories of a known ensemble."""

import dataclasses

import pytest
import torch
from planning_doubles import OffsetEnsemble, point_reward

from mbrl_ros.planning import TrajectoryEvaluator
from mbrl_ros.planning.sampling import make_generators

from support import TORCH_DEVICES

OFFSETS = [0.0, 1.0, 3.0]
BATCH, CANDIDATES, HORIZON = 2, 4, 5


def rollout(model, propagation, particles=None, sequences=None, device="cpu", **kwargs):
    """Rolls the sequences out on ``device``; the trajectories, members and sequences come back on the CPU."""
    evaluator = TrajectoryEvaluator(model.to(device), point_reward(0.0), propagation=propagation, particles=particles,
                                    **kwargs)
    states = torch.tensor([[0.0], [10.0]], device=device)
    if sequences is None:
        sequences = torch.linspace(-1, 1, BATCH * CANDIDATES * HORIZON).view(BATCH, CANDIDATES, HORIZON, 1)
    result = evaluator.rollout(states, sequences.to(device), make_generators([0, 1], device))
    on_cpu = {field.name: getattr(result, field.name).cpu() for field in dataclasses.fields(result)}
    return dataclasses.replace(result, **on_cpu), sequences


def increments(result, sequences):
    """(B, N, P, H) s_{t+1} - s_t - a_t: the offset of the member that predicted each step."""
    steps = result.states[..., 1:, 0] - result.states[..., :-1, 0]
    return steps - sequences[:, :, None, :, 0]


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_ts_inf_particles_follow_one_member_for_the_whole_horizon(device):
    result, sequences = rollout(OffsetEnsemble(OFFSETS), "ts_inf", particles=6, device=device)
    offsets = increments(result, sequences)
    assert result.states.shape == (BATCH, CANDIDATES, 6, HORIZON + 1, 1)
    assert torch.allclose(offsets, offsets[..., :1].expand_as(offsets), atol=1e-4)  # constant in time
    members = result.members
    assert (members == members[..., :1]).all()
    assert torch.allclose(offsets, torch.tensor(OFFSETS)[members], atol=1e-4)
    # balanced: each member carries a third of each problem's particles, and candidates see several members
    per_problem = torch.stack([torch.bincount(members[b, ..., 0].flatten(), minlength=3) for b in range(BATCH)])
    assert (per_problem == CANDIDATES * 6 // 3).all()
    assert (members[..., 0].amax(dim=2) != members[..., 0].amin(dim=2)).any()


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_ts1_particles_switch_members_between_steps(device):
    result, sequences = rollout(OffsetEnsemble(OFFSETS), "ts1", particles=6, device=device)
    offsets = increments(result, sequences)
    members = result.members
    assert torch.allclose(offsets, torch.tensor(OFFSETS)[members], atol=1e-4)
    switched = (members != members[..., :1]).any(dim=-1).float().mean()
    # a particle keeps its member for 5 steps with probability about (1/3)^4: nearly all switch
    assert switched > 0.8
    for t in range(HORIZON):
        counts = torch.bincount(members[0, :, :, t].flatten(), minlength=3)
        assert (counts == CANDIDATES * 6 // 3).all()


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_expectation_moves_to_the_mean_of_the_members(device):
    result, sequences = rollout(OffsetEnsemble(OFFSETS), "expectation", device=device)
    assert result.states.shape[2] == 1
    assert torch.allclose(increments(result, sequences), torch.tensor(sum(OFFSETS) / 3), atol=1e-4)
    assert (result.members == -1).all()


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_members_mode_gives_particle_p_to_member_p(device):
    result, sequences = rollout(OffsetEnsemble(OFFSETS), "members", device=device)
    offsets = increments(result, sequences)
    assert result.states.shape[2] == 3
    for particle, offset in enumerate(OFFSETS):
        assert torch.allclose(offsets[:, :, particle], torch.tensor(offset), atol=1e-4)


def test_deterministic_needs_one_member_and_follows_it():
    with pytest.raises(ValueError, match="single-member"):
        rollout(OffsetEnsemble(OFFSETS), "deterministic")
    result, sequences = rollout(OffsetEnsemble([2.0]), "deterministic")
    assert torch.allclose(increments(result, sequences), torch.tensor(2.0), atol=1e-4)


def test_fixed_particle_counts_reject_other_values():
    with pytest.raises(ValueError, match="particle"):
        rollout(OffsetEnsemble(OFFSETS), "expectation", particles=5)
    with pytest.raises(ValueError, match="particle"):
        rollout(OffsetEnsemble(OFFSETS), "members", particles=2)


def test_aleatoric_sampling_draws_from_the_member_gaussian():
    sequences = torch.zeros(2, 200, HORIZON, 1)
    sampled, _ = rollout(OffsetEnsemble([0.0], variance=0.25), "ts_inf", particles=10, sequences=sequences)
    steps = increments(sampled, sequences)
    assert abs(steps.std().item() - 0.5) < 0.02 and abs(steps.mean().item()) < 0.02
    exact, _ = rollout(OffsetEnsemble([0.0], variance=0.25), "ts_inf", particles=10, sequences=sequences,
                       sample_aleatoric=False)
    assert (increments(exact, sequences) == 0).all()


@pytest.mark.parametrize(("propagation", "particles", "rows"), [("ts_inf", 6, 48), ("ts1", 5, 40),
                                                                   ("expectation", None, 8), ("members", None, 24)])
def test_one_batched_forward_per_time_step(propagation, particles, rows):
    model = OffsetEnsemble(OFFSETS)
    evaluator = TrajectoryEvaluator(model, point_reward(0.0), propagation=propagation, particles=particles)
    evaluator.returns(torch.zeros(BATCH, 1), torch.zeros(BATCH, CANDIDATES, HORIZON, 1), make_generators([0, 1]))
    assert len(model.calls) == HORIZON
    if propagation.startswith("ts"):  # first step: the particles of a candidate share (s, a), each member
        assert model.calls.pop(0) == (BATCH * CANDIDATES, 1)  # evaluates each candidate once
    for shape in model.calls:
        if len(shape) == 3:  # member blocks (E, rows per member, S), padded to a multiple of E
            assert shape[0] == 3 and 0 <= shape[0] * shape[1] - rows < 3 * BATCH
        else:  # every member on all rows
            assert shape == (rows, 1)


def test_row_counts_that_do_not_divide_by_the_ensemble_size_are_padded_and_balanced():
    result, _ = rollout(OffsetEnsemble(OFFSETS), "ts_inf", particles=5,
                        sequences=torch.zeros(BATCH, 1, HORIZON, 1))
    counts = torch.bincount(result.members[0, 0, :, 0], minlength=3)
    assert sorted(counts.tolist()) == [1, 2, 2]


def test_returns_average_particles_and_stop_rewarding_after_termination():
    model = OffsetEnsemble([1.0, 2.0])
    reward = point_reward(0.0)
    evaluator = TrajectoryEvaluator(model, reward, termination_fn=lambda s: s[:, 0] > 4.5, propagation="ts_inf",
                                    particles=4, discount=0.9)
    states, sequences = torch.zeros(1, 1), torch.zeros(1, 1, HORIZON, 1)
    result = evaluator.rollout(states, sequences, make_generators([3]))
    # a member-1 particle (offset 1) never passes 4.5: rewards -1, -4, -9, -16, -25; a member-2 particle
    # reaches 6 at its third step and terminates there: -4, -16, -36 count, later steps do not
    discounts = 0.9 ** torch.arange(HORIZON)
    slow = -(discounts * torch.tensor([1.0, 4, 9, 16, 25])).sum()
    fast = -(discounts[:3] * torch.tensor([4.0, 16, 36])).sum()
    assert torch.allclose(result.returns, ((slow + fast) / 2).reshape(1, 1))
    alive_steps = result.alive[0, 0].sum(dim=-1)  # (P,) steps each particle was alive at
    assert torch.equal(alive_steps, torch.where(result.members[0, 0, :, 0] == 1, 3, 5))
    assert torch.equal(evaluator.returns(states, sequences, make_generators([3])), result.returns)


def test_disagreement_penalty_subtracts_the_member_spread_from_each_step():
    sequences = torch.zeros(1, 3, HORIZON, 1)
    states = torch.zeros(1, 1)
    plain = TrajectoryEvaluator(OffsetEnsemble(OFFSETS), point_reward(0.0), propagation="expectation")
    penalised = TrajectoryEvaluator(OffsetEnsemble(OFFSETS), point_reward(0.0), propagation="expectation",
                                    disagreement_penalty=2.0)
    spread = torch.tensor(OFFSETS).std(correction=0)
    difference = plain.returns(states, sequences, [None]) - penalised.returns(states, sequences, [None])
    assert torch.allclose(difference, 2.0 * HORIZON * spread.expand(1, 3))
    ts = TrajectoryEvaluator(OffsetEnsemble(OFFSETS), point_reward(0.0), propagation="ts_inf", particles=3,
                             disagreement_penalty=2.0)
    result = ts.rollout(states, sequences, make_generators([0]))
    assert torch.allclose(result.disagreement, spread)
    optimistic = TrajectoryEvaluator(OffsetEnsemble(OFFSETS), point_reward(0.0), propagation="expectation",
                                     disagreement_penalty=-2.0)  # a bonus: exploration toward disagreement
    bonus = optimistic.returns(states, sequences, [None]) - plain.returns(states, sequences, [None])
    assert torch.allclose(bonus, 2.0 * HORIZON * spread.expand(1, 3))


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), True, "1"])
def test_a_disagreement_weight_that_is_not_a_finite_number_is_refused(weight):
    with pytest.raises(ValueError, match="disagreement_penalty"):
        TrajectoryEvaluator(OffsetEnsemble(OFFSETS), point_reward(0.0), propagation="expectation",
                            disagreement_penalty=weight)


@pytest.mark.parametrize("discount", [0.0, 1.5, float("nan"), True, "0.9"])
def test_a_discount_outside_0_1_or_not_a_number_is_refused(discount):
    with pytest.raises(ValueError, match="discount"):
        TrajectoryEvaluator(OffsetEnsemble(OFFSETS), point_reward(0.0), propagation="expectation", discount=discount)


def test_bad_task_functions_and_inputs_are_rejected_with_clear_errors():
    model = OffsetEnsemble(OFFSETS)
    states, sequences = torch.zeros(1, 1), torch.zeros(1, 2, 3, 1)
    wrong_reward = TrajectoryEvaluator(model, lambda s, a, n: n, propagation="expectation")
    with pytest.raises(ValueError, match="reward_fn returned shape"):
        wrong_reward.returns(states, sequences, [None])
    wrong_done = TrajectoryEvaluator(model, point_reward(0.0), termination_fn=lambda n: n[:, 0] > 0,
                                     propagation="expectation")
    wrong_done.returns(states, sequences, [None])
    float_done = TrajectoryEvaluator(model, point_reward(0.0), termination_fn=lambda n: n[:, 0],
                                     propagation="expectation")
    with pytest.raises(ValueError, match="bool"):
        float_done.returns(states, sequences, [None])
    evaluator = TrajectoryEvaluator(model, point_reward(0.0), propagation="expectation")
    with pytest.raises(ValueError, match="states must be"):
        evaluator.returns(torch.zeros(1, 2), sequences, [None])
    with pytest.raises(ValueError, match="action sequences must be"):
        evaluator.returns(states, torch.zeros(1, 2, 3, 2), [None])
    with pytest.raises(ValueError, match="unknown propagation"):
        TrajectoryEvaluator(model, point_reward(0.0), propagation="ts2")
