"""Planning in a background thread, so that a fixed-rate control loop never waits for the planner.

The worker always plans from the newest state it was given; the newest complete plan is always available,
stamped with the time of the state it started from, so the control loop picks the action for *now* from it
(``Plan.action_at``). Work that must not overlap a plan, such as swapping the dynamics model, is queued with
:meth:`PlannerWorker.between_plans` and runs in the worker thread between two plans.
"""

import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Plan:
    """An action sequence planned from the state measured at ``state_stamp``.

    Attributes:
        actions: (H, A) one action per control period, the first for the period starting at ``state_stamp``.
        state_stamp: time of the state the plan starts from (seconds, the control loop's clock).
        dt: control period (seconds).
        plan_time: wall time the planner took (seconds).
        info: planner statistics (iterations, predicted return, disagreement, ...).
    """

    actions: np.ndarray
    state_stamp: float
    dt: float
    plan_time: float
    info: dict = field(default_factory=dict)

    def step_at(self, now: float) -> int:
        """Index of the period that contains ``now``."""
        return math.floor((now - self.state_stamp) / self.dt + 1e-6)

    def action_at(self, now: float) -> np.ndarray | None:
        """The action for the control period that contains ``now``; None once the plan is used up."""
        step = self.step_at(now)
        if step < 0 or step >= len(self.actions):
            return None
        return self.actions[step]


# The planning function: (state (S,), steps since the previous plan's start) -> (actions (H, A), statistics).
PlanFunction = Callable[[np.ndarray, int], tuple[np.ndarray, dict]]


class PlannerWorker:
    """Runs ``plan_function`` in a thread on the newest submitted state, over and over.

    Args:
        plan_function: plans from a state; gets the number of control periods between this plan's state and
            the previous plan's, so a warm-started planner can shift its previous solution by that much.
        dt: control period (seconds).
        on_plan: called with every completed plan (in the thread that planned it), e.g. to publish its stats.
        on_error: called with the exception when a plan or queued work fails; the worker keeps running.
    """

    def __init__(
        self, plan_function: PlanFunction, dt: float, on_plan: Callable[[Plan], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ):
        self._plan_function, self._dt = plan_function, dt
        self._on_plan, self._on_error = on_plan, on_error
        self._lock = threading.Lock()
        self._new_state = threading.Condition(self._lock)
        self._state: tuple[float, np.ndarray] | None = None
        self._state_is_new = False
        self._plan: Plan | None = None
        self._between_plans: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.plans_completed = 0
        self.plans_failed = 0

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the planner worker is already running")
        self._thread = threading.Thread(target=self._run, name="planner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops after the plan in progress and joins the thread (never leave it running inside torch)."""
        with self._lock:
            self._stopping = True
            self._new_state.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"the planner did not stop within {timeout} s")
            self._thread = None

    def submit_state(self, stamp: float, state: np.ndarray) -> None:
        """Makes ``state``, measured at ``stamp`` (seconds), the one the next plan starts from."""
        with self._lock:
            self._state = (stamp, np.array(state, dtype=np.float64, copy=True))
            self._state_is_new = True
            self._new_state.notify()

    def latest_plan(self) -> Plan | None:
        with self._lock:
            return self._plan

    def between_plans(self, work: Callable[[], None]) -> None:
        """Runs ``work`` in the worker thread before its next plan (e.g. swapping the model)."""
        self._between_plans.put(work)
        with self._lock:
            self._new_state.notify()

    def plan_now(self, stamp: float, state: np.ndarray) -> Plan:
        """Plans synchronously in the caller's thread (lockstep operation, no thread started)."""
        if self._thread is not None:
            raise RuntimeError("plan_now is for a worker that was not started")
        self._run_queued_work()
        return self._plan_from(stamp, np.asarray(state, dtype=np.float64))

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and not self._state_is_new and self._between_plans.empty():
                    self._new_state.wait()
                if self._stopping:
                    return
                pending = self._state if self._state_is_new else None
                self._state_is_new = False
            self._run_queued_work()
            if pending is not None:
                try:
                    self._plan_from(*pending)
                except Exception as error:  # a failed plan must not end the control loop
                    self.plans_failed += 1
                    self._report(error)

    def _run_queued_work(self) -> None:
        while not self._between_plans.empty():
            work = self._between_plans.get()
            try:
                work()
            except Exception as error:  # e.g. a model that fails to load: keep planning with the old one
                self._report(error)

    def _report(self, error: Exception) -> None:
        if self._on_error is not None:
            self._on_error(error)

    def _plan_from(self, stamp: float, state: np.ndarray) -> Plan:
        previous = self.latest_plan()
        steps = 1 if previous is None else max(0, round((stamp - previous.state_stamp) / self._dt))
        started = time.perf_counter()
        actions, info = self._plan_function(state, steps)
        plan = Plan(np.asarray(actions, dtype=np.float64), stamp, self._dt, time.perf_counter() - started, info)
        with self._lock:
            self._plan = plan
        self.plans_completed += 1
        if self._on_plan is not None:
            self._on_plan(plan)
        return plan
