"""Transitions (s, a, s') at the control period, assembled from a robot's state and command streams.

A robot publishes its state (e.g. /joint_states, stamped) and receives commands (e.g.
<controller>/commands, stamped by when they were issued) anyway; this turns those two streams into the
transitions a dynamics model learns from, with no cooperation from the robot:

- states are taken on the control grid: the next state used is the one nearest to the previous one plus
  ``dt``, within ``dt * tolerance``, so a 500 Hz state stream yields 1 / dt transitions per second;
- a transition's action is the newest command issued before ``s'`` was measured and not long before ``s``
  (within one period plus the tolerance): the command in force over the interval;
- gaps (no state within the tolerance of a grid point, or no command in force) drop the transition;
- messages are held back for ``reorder_window`` seconds of stream time, so out-of-order arrivals within
  that window are put back in order; older ones are dropped and counted;
- :meth:`cut` marks an episode boundary (a reset) at a stamp: no transition spans it.
"""

import bisect
import heapq
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Transition:
    """One (s, a, s') over one control period; ``stamp`` is the time of ``next_state`` (seconds)."""

    state: np.ndarray
    action: np.ndarray
    next_state: np.ndarray
    stamp: float
    dt: float


@dataclass
class AssemblerStats:
    """Counts of what the assembler did with its input."""

    transitions: int = 0
    gaps: int = 0  # consecutive grid states too far apart
    no_command: int = 0  # no command in force over the interval
    late: int = 0  # messages older than the reorder window, dropped


@dataclass(order=True)
class _Stamped:
    stamp: float
    sequence: int  # arrival order: breaks ties between equal stamps
    vector: np.ndarray = field(compare=False)


def _stamp(message: _Stamped) -> float:
    return message.stamp


class TransitionAssembler:
    """Builds transitions of one robot from its stamped states and commands.

    Args:
        dt: control period (seconds).
        tolerance: allowed deviation of the state spacing from ``dt``, as a fraction of ``dt``.
        reorder_window: how long (seconds of stream time) messages are held back to restore their order.
    """

    def __init__(self, dt: float, tolerance: float = 0.25, reorder_window: float | None = None):
        if dt <= 0 or not np.isfinite(dt):
            raise ValueError(f"dt must be a positive number of seconds, got {dt}")
        if not 0 <= tolerance < 1:
            raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
        self.dt, self.tolerance = dt, tolerance
        self.reorder_window = 2 * dt if reorder_window is None else reorder_window
        self.stats = AssemblerStats()
        self._pending_states: list[_Stamped] = []  # heap, not yet processed
        self._commands: list[_Stamped] = []  # sorted by stamp
        self._sequence = 0
        self._newest_stamp = -np.inf
        self._processed_until = -np.inf  # states at or before this stamp have been consumed
        self._grid_state: _Stamped | None = None  # the last state taken on the control grid
        self._last_seen: _Stamped | None = None  # the last state consumed, on the grid or not
        self._slack = dt * tolerance

    def add_state(self, stamp: float, state: np.ndarray) -> list[Transition]:
        """Adds a state measured at ``stamp`` (seconds); returns the transitions that became complete."""
        if stamp <= self._processed_until:
            self.stats.late += 1
            return []
        heapq.heappush(self._pending_states, self._stamped(stamp, state))
        return self._advance(stamp)

    def add_command(self, stamp: float, action: np.ndarray) -> list[Transition]:
        """Adds a command issued at ``stamp`` (seconds); returns the transitions that became complete."""
        if stamp <= self._processed_until - self.dt * (1 + self.tolerance):
            self.stats.late += 1
            return []
        bisect.insort(self._commands, self._stamped(stamp, action), key=_stamp)
        return self._advance(stamp)

    def cut(self, at: float | None = None) -> list[Transition]:
        """Episode boundary after the state stamped ``at`` (default: after everything received so far).

        Completes the transitions up to ``at`` and starts afresh: no transition spans the boundary. States
        stamped after ``at`` that already arrived (the next episode's, overtaking the end-of-episode message)
        stay queued and begin the next episode; commands before them are kept for it.
        """
        frontier = np.inf if at is None else at
        transitions = self._process_states_until(frontier)
        previous, last_seen = self._grid_state, self._last_seen
        if previous is not None and last_seen is not previous and self._near_grid_point(previous, last_seen):
            # The last state came just before its grid point: nothing nearer can follow now.
            transition = self._settle(previous, last_seen)
            transitions += [transition] if transition is not None else []
        self._grid_state = self._last_seen = None
        self._commands = [c for c in self._commands if c.stamp > frontier]
        if at is not None:
            self._processed_until = max(self._processed_until, at)  # a straggler of the ended episode is late
        return transitions

    def _stamped(self, stamp: float, vector: np.ndarray) -> _Stamped:
        self._sequence += 1
        return _Stamped(float(stamp), self._sequence, np.array(vector, dtype=np.float64, copy=True))

    def _advance(self, stamp: float) -> list[Transition]:
        self._newest_stamp = max(self._newest_stamp, stamp)
        return self._process_states_until(self._newest_stamp - self.reorder_window)

    def _process_states_until(self, frontier: float) -> list[Transition]:
        transitions = []
        while self._pending_states and self._pending_states[0].stamp <= frontier:
            state = heapq.heappop(self._pending_states)
            self._processed_until = max(self._processed_until, state.stamp)
            transitions += self._take_state(state)
        self._forget_old_commands()
        return transitions

    def _take_state(self, state: _Stamped) -> list[Transition]:
        """Consumes the next state in stamp order; returns the transitions of the grid points it settles."""
        transitions = []
        while True:
            previous, last_seen = self._grid_state, self._last_seen
            self._last_seen = state
            if previous is None:
                self._grid_state = state
                return transitions
            if state.stamp < previous.stamp + self.dt:
                return transitions  # before the next grid point: states come faster than the control period
            # ``state`` is the first state at or past the target, ``last_seen`` the last one before it.
            candidates = [c for c in (last_seen, state) if c is not previous and self._near_grid_point(previous, c)]
            if not candidates:
                self.stats.gaps += 1
                self._grid_state = state
                return transitions
            chosen = min(candidates, key=lambda candidate: abs(candidate.stamp - previous.stamp - self.dt))
            transition = self._settle(previous, chosen)
            transitions += [transition] if transition is not None else []
            if chosen is state:
                return transitions
            # The grid point was the state before: look at ``state`` again from there.

    def _near_grid_point(self, previous: _Stamped, state: _Stamped) -> bool:
        return abs(state.stamp - previous.stamp - self.dt) <= self._slack

    def _settle(self, previous: _Stamped, chosen: _Stamped) -> Transition | None:
        """Takes ``chosen`` as the grid point after ``previous``; the transition between them, if complete."""
        self._grid_state = chosen
        action = self._command_in_force(previous.stamp, chosen.stamp)
        if action is None:
            self.stats.no_command += 1
            return None
        self.stats.transitions += 1
        return Transition(previous.vector, action.copy(), chosen.vector, chosen.stamp, chosen.stamp - previous.stamp)

    def _command_in_force(self, start: float, end: float) -> np.ndarray | None:
        """The newest command issued before ``end`` and not before one period (plus tolerance) ahead of ``start``."""
        index = bisect.bisect_left(self._commands, end, key=_stamp) - 1
        if index < 0 or self._commands[index].stamp < start - self.dt * (1 + self.tolerance):
            return None
        return self._commands[index].vector

    def _forget_old_commands(self) -> None:
        """Drops commands no future transition can use (all but the newest before the grid state)."""
        if self._grid_state is None:
            return
        keep_from = bisect.bisect_left(self._commands, self._grid_state.stamp, key=_stamp) - 1
        if keep_from > 0:
            del self._commands[:keep_from]
