"""TransitionAssembler: (s, a, s') at the control period from state and command streams."""

import numpy as np
import pytest

from mbrl_ros.learning import TransitionAssembler

DT = 0.02


def robot_streams(steps: int, state_rate: int = 1, seed: int = 0, jitter: float = 0.0):
    """A synthetic robot: integrator s' = s + a * dt, commanded once per period just after each grid state.

    Returns the state messages (stamp, s), command messages (stamp, a) and the true transitions, with states
    published ``state_rate`` times per control period.
    """
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, size=(steps, 2))
    states, commands, truth = [], [], []
    s = np.zeros(2)
    for k in range(steps):
        t = k * DT + rng.uniform(-jitter, jitter)
        for sub in range(state_rate):
            states.append((t + sub * DT / state_rate, s + actions[k] * sub * DT / state_rate))
        commands.append((t + 0.001, actions[k]))
        s_next = s + actions[k] * DT
        truth.append((s.copy(), actions[k].copy(), s_next.copy()))
        s = s_next
    states.append(((steps) * DT, s.copy()))
    return states, commands, truth


def feed(assembler: TransitionAssembler, messages) -> list:
    transitions = []
    for kind, stamp, vector in messages:
        add = assembler.add_state if kind == "state" else assembler.add_command
        transitions += add(stamp, vector)
    return transitions + assembler.cut()


def interleaved(states, commands):
    messages = [("state", t, s) for t, s in states] + [("command", t, a) for t, a in commands]
    return sorted(messages, key=lambda message: message[1])


def assert_matches(transitions, truth):
    assert len(transitions) == len(truth)
    for transition, (s, a, s_next) in zip(transitions, truth, strict=True):
        np.testing.assert_allclose(transition.state, s)
        np.testing.assert_allclose(transition.action, a)
        np.testing.assert_allclose(transition.next_state, s_next)


def test_in_order_streams_give_exactly_the_true_transitions():
    states, commands, truth = robot_streams(50)
    assembler = TransitionAssembler(DT)
    transitions = feed(assembler, interleaved(states, commands))
    assert_matches(transitions, truth)
    assert all(abs(t.dt - DT) < 1e-9 for t in transitions)
    assert assembler.stats.transitions == 50 and assembler.stats.gaps == 0 and assembler.stats.late == 0


def test_states_faster_than_the_control_period_are_resampled_on_the_grid():
    states, commands, truth = robot_streams(40, state_rate=5)
    transitions = feed(TransitionAssembler(DT), interleaved(states, commands))
    assert_matches(transitions, truth)


def test_out_of_order_arrival_within_the_window_is_put_back_in_order():
    states, commands, truth = robot_streams(60, seed=3)
    messages = interleaved(states, commands)
    rng = np.random.default_rng(7)
    # Swap neighbours: every message arrives at most one or two places away from its turn.
    for i in range(0, len(messages) - 1, 2):
        if rng.random() < 0.7:
            messages[i], messages[i + 1] = messages[i + 1], messages[i]
    assembler = TransitionAssembler(DT, reorder_window=3 * DT)
    assert_matches(feed(assembler, messages), truth)
    assert assembler.stats.late == 0


def test_a_message_older_than_the_window_is_dropped_and_counted():
    states, commands, truth = robot_streams(20)
    messages = interleaved(states, commands)
    straggler = messages.pop(10)
    messages.append(straggler)  # arrives 0.2 s late, far beyond a 2-period window
    assembler = TransitionAssembler(DT)
    transitions = feed(assembler, messages)
    assert assembler.stats.late == 1
    assert len(transitions) < len(truth)


def test_a_gap_in_the_state_stream_drops_only_the_transition_across_it():
    states, commands, truth = robot_streams(30)
    del states[15]  # the state at k = 15 never arrives
    assembler = TransitionAssembler(DT)
    transitions = feed(assembler, interleaved(states, commands))
    assert_matches(transitions, truth[:14] + truth[16:])
    assert assembler.stats.gaps == 1


def test_no_transition_without_a_command_in_force():
    states, commands, truth = robot_streams(30)
    # The controller skipped the tick k = 10, and stopped commanding after k = 19.
    commands = [command for k, command in enumerate(commands) if k != 10 and k < 20]
    assembler = TransitionAssembler(DT)
    transitions = feed(assembler, interleaved(states, commands))
    # A command stays in force for up to one period plus the tolerance after the interval starts: k = 10 is
    # taken with the command of k = 9 and k = 20 with that of k = 19; k = 21 ... 29 have none.
    assert len(transitions) == 21
    np.testing.assert_allclose(transitions[10].action, truth[9][1])
    np.testing.assert_allclose(transitions[20].action, truth[19][1])
    assert assembler.stats.no_command == 9


def test_cut_starts_a_new_episode_with_no_transition_across_the_reset():
    assembler = TransitionAssembler(DT)
    first_states, first_commands, first_truth = robot_streams(10, seed=1)
    transitions = feed(assembler, interleaved(first_states, first_commands))
    later = [(t + 1.0, s + 100) for t, s in robot_streams(10, seed=2)[0]]
    later_commands = [(t + 1.0, a) for t, a in robot_streams(10, seed=2)[1]]
    transitions += feed(assembler, interleaved(later, later_commands))
    assert len(transitions) == 20
    assert all(np.all(np.abs(t.next_state - t.state) < 1.0) for t in transitions), "a transition spans the reset"


def test_a_cut_at_a_stamp_keeps_the_next_episodes_early_messages_for_it():
    """Lockstep after a reset: the next episode's first state (one period later) overtakes the episode's end."""
    first_states, first_commands, first_truth = robot_streams(10, seed=1)
    second_states, second_commands, second_truth = robot_streams(10, seed=2)
    offset = 10 * DT + DT  # the reset takes one period on the robot's clock
    second_states = [(t + offset, s + 100) for t, s in second_states]
    second_commands = [(t + offset, a) for t, a in second_commands]
    second_truth = [(s + 100, a, n + 100) for s, a, n in second_truth]
    assembler = TransitionAssembler(DT)
    transitions = []
    for kind, stamp, vector in interleaved(first_states, first_commands) + interleaved(second_states[:2], []):
        transitions += (assembler.add_state if kind == "state" else assembler.add_command)(stamp, vector)
    transitions += assembler.cut(at=first_states[-1][0])  # the end-of-episode message arrives late
    rest = interleaved(second_states[2:], second_commands)
    transitions += feed(assembler, rest)
    assert_matches(transitions, first_truth + second_truth)


def test_jittery_stamps_within_the_tolerance_are_accepted():
    states, commands, truth = robot_streams(40, jitter=0.1 * DT)
    assert_matches(feed(TransitionAssembler(DT), interleaved(states, commands)), truth)


@pytest.mark.parametrize("dt, tolerance", [(0.0, 0.2), (-1.0, 0.2), (float("nan"), 0.2), (0.02, 1.5)])
def test_invalid_settings_are_rejected(dt, tolerance):
    with pytest.raises(ValueError):
        TransitionAssembler(dt, tolerance)
