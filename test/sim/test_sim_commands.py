"""The bridge's command logic: hold the last valid command, follow trajectories, hold posture on timeout."""

import numpy as np

from mbrl_ros.sim.commands import ActuatorCommand


def _never_called() -> np.ndarray:
    raise AssertionError("the posture was asked for without a timeout")


def test_the_initial_posture_is_held_until_the_first_command_without_timing_out():
    command = ActuatorCommand(np.array([1.0, 2.0]), timeout=0.5)
    ctrl, timed_out = command.current(100.0, _never_called)
    assert ctrl.tolist() == [1.0, 2.0] and not timed_out and command.holding


def test_the_last_command_holds_until_the_timeout_then_the_posture_is_held():
    command = ActuatorCommand(np.zeros(2), timeout=0.5)
    command.command(np.array([3.0, 4.0]), now=1.0)
    ctrl, timed_out = command.current(1.5, _never_called)
    assert ctrl.tolist() == [3.0, 4.0] and not timed_out
    assert not command.holding
    ctrl, timed_out = command.current(1.51, lambda: np.array([7.0, 8.0]))
    assert ctrl.tolist() == [7.0, 8.0] and timed_out and command.holding
    ctrl, timed_out = command.current(5.0, _never_called)
    assert ctrl.tolist() == [7.0, 8.0] and not timed_out, "the warning comes once per timeout"
    command.command(np.array([5.0, 6.0]), now=5.0)
    assert command.current(5.2, _never_called)[0].tolist() == [5.0, 6.0]


def test_a_zero_timeout_never_times_out():
    command = ActuatorCommand(np.zeros(1), timeout=0.0)
    command.command(np.array([1.0]), now=0.0)
    assert command.current(1e6, _never_called)[0].tolist() == [1.0]


def test_trajectories_interpolate_from_the_command_in_force_and_leave_other_actuators_alone():
    command = ActuatorCommand(np.zeros(3), timeout=0.5)
    command.command(np.array([1.0, 1.0, 1.0]), now=0.0)
    command.follow(np.array([2, 0]), times=np.array([1.0, 2.0]), values=np.array([[3.0, -1.0], [5.0, 1.0]]), now=10.0)
    np.testing.assert_allclose(command.current(10.0, _never_called)[0], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(command.current(10.5, _never_called)[0], [0.0, 1.0, 2.0])
    np.testing.assert_allclose(command.current(11.5, _never_called)[0], [0.0, 1.0, 4.0])
    np.testing.assert_allclose(command.current(12.4, _never_called)[0], [1.0, 1.0, 5.0])
    # The timeout runs from the trajectory's end.
    ctrl, timed_out = command.current(12.6, lambda: np.full(3, 9.0))
    assert timed_out and ctrl.tolist() == [9.0, 9.0, 9.0]


def test_a_trajectory_starting_at_time_zero_jumps_to_its_first_point():
    command = ActuatorCommand(np.zeros(2), timeout=0.0)
    command.follow(np.array([1]), times=np.array([0.0]), values=np.array([[2.5]]), now=3.0)
    assert command.current(3.0, _never_called)[0].tolist() == [0.0, 2.5]


def test_a_new_command_replaces_a_trajectory():
    command = ActuatorCommand(np.zeros(1), timeout=1.0)
    command.follow(np.array([0]), times=np.array([1.0]), values=np.array([[10.0]]), now=0.0)
    command.command(np.array([-1.0]), now=0.5)
    assert command.current(0.9, _never_called)[0].tolist() == [-1.0]
