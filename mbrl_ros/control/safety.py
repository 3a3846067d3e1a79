"""The last stage before a command reaches a robot: finite, within limits, within a per-tick rate."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CommandLimits:
    """Bounds on the commands a controller may publish, one entry per actuator.

    Attributes:
        lower: (A,) lowest command (e.g. joint position limit, rad).
        upper: (A,) highest command.
        max_step: (A,) largest change between two consecutive commands, or None for no rate limit.
    """

    lower: np.ndarray
    upper: np.ndarray
    max_step: np.ndarray | None = None

    def __post_init__(self) -> None:
        lower, upper = np.asarray(self.lower, dtype=float), np.asarray(self.upper, dtype=float)
        if lower.ndim != 1 or lower.shape != upper.shape:
            raise ValueError(f"lower and upper must be vectors of one length, got {lower.shape} and {upper.shape}")
        if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper)) and np.all(lower <= upper)):
            raise ValueError("command limits must be finite with lower <= upper")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        if self.max_step is not None:
            max_step = np.broadcast_to(np.asarray(self.max_step, dtype=float), lower.shape).copy()
            if not (np.all(np.isfinite(max_step)) and np.all(max_step > 0)):
                raise ValueError("max_step must be finite and positive")
            object.__setattr__(self, "max_step", max_step)

    @property
    def size(self) -> int:
        return self.lower.shape[0]


@dataclass(frozen=True)
class FilteredCommand:
    """A command safe to publish, and why it differs from the proposal (empty when it doesn't)."""

    command: np.ndarray
    reasons: tuple[str, ...]


class SafetyFilter:
    """Turns any proposed command into one safe to publish.

    A proposal of the wrong length or with a NaN/inf entry is replaced by the previous command (hold);
    otherwise it is clipped to the limits and then moved at most ``max_step`` from the previous command.

    Args:
        limits: the actuator bounds.
        hold_command: (A,) the command to hold until the first one passes (e.g. the current joint positions).
    """

    def __init__(self, limits: CommandLimits, hold_command: np.ndarray):
        self.limits = limits
        self._previous = self._clip(self._checked(hold_command, "hold_command"))

    @property
    def previous(self) -> np.ndarray:
        """(A,) the last command this filter let out (a copy)."""
        return self._previous.copy()

    def reset(self, hold_command: np.ndarray) -> None:
        """Re-anchors the rate limit at ``hold_command`` (e.g. the measured posture when re-enabled)."""
        self._previous = self._clip(self._checked(hold_command, "hold_command"))

    def __call__(self, proposed: np.ndarray) -> FilteredCommand:
        proposed = np.asarray(proposed, dtype=float)
        if proposed.shape != (self.limits.size,):
            return FilteredCommand(self.previous, (f"wrong length {proposed.shape}, expected ({self.limits.size},)",))
        if not np.all(np.isfinite(proposed)):
            return FilteredCommand(self.previous, ("non-finite entries",))
        reasons = []
        command = self._clip(proposed)
        if not np.array_equal(command, proposed):
            reasons.append("clipped to the command limits")
        if self.limits.max_step is not None:
            step = np.clip(command - self._previous, -self.limits.max_step, self.limits.max_step)
            limited = self._previous + step
            if not np.array_equal(limited, command):
                reasons.append("rate limited")
            command = limited
        self._previous = command
        return FilteredCommand(command.copy(), tuple(reasons))

    def _clip(self, command: np.ndarray) -> np.ndarray:
        return np.clip(command, self.limits.lower, self.limits.upper)

    def _checked(self, command: np.ndarray, name: str) -> np.ndarray:
        command = np.asarray(command, dtype=float)
        if command.shape != (self.limits.size,) or not np.all(np.isfinite(command)):
            raise ValueError(f"{name} must be a finite vector of length {self.limits.size}, got {command!r}")
        return command
