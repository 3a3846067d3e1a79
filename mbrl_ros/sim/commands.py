"""What a simulated robot's actuators are told, between and without commands (the bridge's command logic).

Like a ros2_control robot: the last valid forward command is held until the next one; a joint trajectory is
followed by linear interpolation from the command in force when it arrived; when no command has arrived
for ``timeout`` seconds (after the end of a trajectory), the robot holds its posture of that moment.
Times are seconds on a clock that never goes back (the bridge uses simulated time).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class _Trajectory:
    indices: np.ndarray  # (J,) actuators
    knot_times: np.ndarray  # (K,) absolute times (s)
    knot_values: np.ndarray  # (K, J)


class ActuatorCommand:
    """The actuator controls to apply at any time, given the commands received so far."""

    def __init__(self, initial: np.ndarray, timeout: float) -> None:
        """
        Args:
            initial: (A,) controls to hold until the first command (e.g. the posture at reset).
            timeout: seconds without a command after which the posture is held (0 or less: never).
        """
        self._ctrl = np.asarray(initial, dtype=np.float64).copy()
        self.timeout = timeout
        self._last_command_time: float | None = None  # None: holding, no command to time out
        self._trajectory: _Trajectory | None = None

    @property
    def holding(self) -> bool:
        """No command is in force: the controls hold a posture (at start, after a reset or a timeout)."""
        return self._last_command_time is None

    def hold(self, ctrl: np.ndarray) -> None:
        """Holds ``ctrl`` (A,) until the next command (no timeout runs meanwhile)."""
        self._ctrl = np.asarray(ctrl, dtype=np.float64).copy()
        self._trajectory = None
        self._last_command_time = None

    def command(self, ctrl: np.ndarray, now: float) -> None:
        """A forward command (A,), valid from ``now`` (s) until the next one or the timeout."""
        self._ctrl = np.asarray(ctrl, dtype=np.float64).copy()
        self._trajectory = None
        self._last_command_time = now

    def follow(self, indices: np.ndarray, times: np.ndarray, values: np.ndarray, now: float) -> None:
        """Follows a trajectory of actuators ``indices`` (J,) through ``values`` (P, J) at ``times`` (P,) after ``now``.

        It starts from the controls in force at ``now``; actuators it does not name keep theirs.
        """
        start = self.current(now, lambda: self._ctrl)[0][indices]
        knot_times = now + np.asarray(times, dtype=np.float64)
        knot_values = np.asarray(values, dtype=np.float64)
        if times[0] > 0:
            knot_times = np.concatenate([[now], knot_times])
            knot_values = np.vstack([start, knot_values])
        self._trajectory = _Trajectory(np.asarray(indices), knot_times, knot_values)
        self._last_command_time = float(knot_times[-1])

    def current(self, now: float, posture: Callable[[], np.ndarray]) -> tuple[np.ndarray, bool]:
        """The controls (A,) to apply at ``now`` (s), and whether the command timed out just now.

        Args:
            now: the time the controls are for.
            posture: gives the controls that hold the current posture, called when the command times out.
        """
        timed_out = (
            self._last_command_time is not None
            and self.timeout > 0
            and now - self._last_command_time > self.timeout
        )
        if timed_out:
            self.hold(posture())
        if self._trajectory is not None:
            trajectory = self._trajectory
            for column, actuator in enumerate(trajectory.indices):
                self._ctrl[actuator] = np.interp(now, trajectory.knot_times, trajectory.knot_values[:, column])
        return self._ctrl.copy(), timed_out
