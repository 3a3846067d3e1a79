"""SafetyFilter: whatever is proposed, what comes out is finite, within limits and within the rate limit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mbrl_ros.control import CommandLimits, SafetyFilter

LIMITS = CommandLimits(lower=np.array([-1.0, 0.0, -0.5]), upper=np.array([1.0, 1.5, 0.5]), max_step=0.1)

anything = st.one_of(
    arrays(np.float64, st.integers(0, 5), elements=st.floats(allow_nan=True, allow_infinity=True, width=64)),
    arrays(np.float64, 3, elements=st.floats(allow_nan=True, allow_infinity=True, width=64)),
    arrays(np.float64, 3, elements=st.floats(-3, 3)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(anything, min_size=1, max_size=20))
def test_every_output_is_finite_within_limits_and_within_one_step_of_the_previous(proposals):
    safety = SafetyFilter(LIMITS, hold_command=np.zeros(3))
    previous = safety.previous
    for proposal in proposals:
        command = safety(proposal).command
        assert command.shape == (3,)
        assert np.all(np.isfinite(command))
        assert np.all(command >= LIMITS.lower) and np.all(command <= LIMITS.upper)
        assert np.all(np.abs(command - previous) <= LIMITS.max_step + 1e-12)
        previous = command


def test_a_valid_proposal_within_reach_passes_unchanged():
    safety = SafetyFilter(LIMITS, hold_command=np.array([0.0, 0.5, 0.0]))
    filtered = safety(np.array([0.05, 0.55, -0.05]))
    np.testing.assert_array_equal(filtered.command, [0.05, 0.55, -0.05])
    assert filtered.reasons == ()


@pytest.mark.parametrize(
    "proposal, reason",
    [(np.array([np.nan, 0.5, 0.0]), "non-finite"), (np.array([np.inf, 0, 0]), "non-finite"), (np.ones(4), "length")],
)
def test_invalid_proposals_hold_the_previous_command(proposal, reason):
    safety = SafetyFilter(LIMITS, hold_command=np.array([0.2, 0.5, 0.1]))
    filtered = safety(proposal)
    np.testing.assert_array_equal(filtered.command, [0.2, 0.5, 0.1])
    assert reason in filtered.reasons[0]


def test_far_targets_are_clipped_then_approached_at_the_rate_limit():
    safety = SafetyFilter(LIMITS, hold_command=np.zeros(3))
    commands = [safety(np.array([5.0, 5.0, -5.0])) for _ in range(20)]
    assert "clipped to the command limits" in commands[0].reasons and "rate limited" in commands[0].reasons
    np.testing.assert_allclose(commands[0].command, [0.1, 0.1, -0.1])
    np.testing.assert_allclose(commands[-1].command, [1.0, 1.5, -0.5])


def test_reset_reanchors_the_rate_limit():
    safety = SafetyFilter(LIMITS, hold_command=np.zeros(3))
    safety.reset(np.array([0.9, 1.4, 0.4]))
    np.testing.assert_allclose(safety(np.array([1.0, 1.5, 0.5])).command, [1.0, 1.5, 0.5])


@pytest.mark.parametrize(
    "lower, upper, max_step",
    [([0.0, 1.0], [1.0], None), ([1.0], [0.0], None), ([np.nan], [1.0], None), ([0.0], [1.0], 0.0)],
)
def test_invalid_limits_are_rejected(lower, upper, max_step):
    with pytest.raises(ValueError):
        CommandLimits(np.array(lower), np.array(upper), max_step)


def test_an_invalid_hold_command_is_rejected():
    with pytest.raises(ValueError, match="hold_command"):
        SafetyFilter(LIMITS, hold_command=np.array([np.nan, 0.0, 0.0]))
