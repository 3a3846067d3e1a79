"""PlannerWorker: anytime planning in a thread, newest state first, work queued between plans."""

import threading
import time

import numpy as np
import pytest

from mbrl_ros.control.worker import Plan, PlannerWorker

from support import wait_for

DT = 0.02


class RecordingPlanner:
    """A plan function that plans ``H`` copies of the state's first entry, slowly, and records its calls."""

    def __init__(self, delay: float = 0.01, horizon: int = 5):
        self.delay, self.horizon = delay, horizon
        self.calls: list[tuple[float, int]] = []
        self.active = threading.Event()
        self.threads: set[str] = set()

    def __call__(self, state: np.ndarray, steps: int) -> tuple[np.ndarray, dict]:
        self.active.set()
        self.threads.add(threading.current_thread().name)
        self.calls.append((float(state[0]), steps))
        time.sleep(self.delay)
        self.active.clear()
        return np.full((self.horizon, 2), state[0]), {"iterations": 3}


@pytest.fixture
def planner_and_worker():
    planner = RecordingPlanner()
    worker = PlannerWorker(planner, DT)
    worker.start()
    yield planner, worker
    worker.stop()


def test_the_latest_plan_comes_from_the_newest_state(planner_and_worker):
    planner, worker = planner_and_worker
    for k in range(50):
        worker.submit_state(k * DT, np.array([float(k), 0.0]))
        time.sleep(0.001)
    assert wait_for(lambda: worker.latest_plan() is not None and worker.latest_plan().actions[0, 0] == 49.0, 5)
    plan = worker.latest_plan()
    assert plan.state_stamp == pytest.approx(49 * DT) and plan.info == {"iterations": 3}
    assert len(planner.calls) < 50, "stale states were planned instead of skipped"
    assert planner.threads == {"planner"}


def test_steps_count_the_periods_since_the_previous_plan(planner_and_worker):
    planner, worker = planner_and_worker
    for k in (0, 3, 4, 10):
        worker.submit_state(k * DT, np.array([float(k), 0.0]))
        assert wait_for(lambda k=k: worker.latest_plan() is not None and worker.latest_plan().actions[0, 0] == k, 5)
    assert [steps for _, steps in planner.calls] == [1, 3, 1, 6]


def test_work_queued_between_plans_never_overlaps_a_plan(planner_and_worker):
    planner, worker = planner_and_worker
    overlaps, ran = [], []

    def swap_model():
        overlaps.append(planner.active.is_set())
        ran.append(threading.current_thread().name)

    for k in range(20):
        worker.submit_state(k * DT, np.array([float(k), 0.0]))
        worker.between_plans(swap_model)
        time.sleep(0.004)
    assert wait_for(lambda: len(ran) == 20, 5)
    assert not any(overlaps) and set(ran) == {"planner"}


def test_a_failing_plan_is_reported_and_the_worker_keeps_planning():
    errors = []
    calls = []

    def flaky(state, steps):
        calls.append(state[0])
        if state[0] == 1.0:
            raise RuntimeError("planner blew up")
        return np.zeros((3, 1)), {}

    planned = []
    worker = PlannerWorker(flaky, DT, on_plan=planned.append, on_error=errors.append)
    worker.start()
    try:
        for k in range(3):
            worker.submit_state(k * DT, np.array([float(k)]))
            assert wait_for(lambda k=k: k in calls, 5)
        worker.between_plans(lambda: 1 / 0)
        worker.submit_state(3 * DT, np.array([3.0]))
        assert wait_for(lambda: worker.plans_completed == 3, 5)
    finally:
        worker.stop()
    assert worker.plans_failed == 1 and len(planned) == 3
    assert [type(error) for error in errors] == [RuntimeError, ZeroDivisionError]


def test_stop_waits_for_the_plan_in_progress():
    planner = RecordingPlanner(delay=0.3)
    worker = PlannerWorker(planner, DT)
    worker.start()
    worker.submit_state(0.0, np.array([1.0, 0.0]))
    assert wait_for(planner.active.is_set, 5)
    worker.stop()
    assert not planner.active.is_set()
    assert worker.latest_plan() is not None


def test_plan_now_plans_synchronously_after_queued_work():
    planner = RecordingPlanner(delay=0.0)
    worker = PlannerWorker(planner, DT)
    order = []
    worker.between_plans(lambda: order.append("swap"))
    plan = worker.plan_now(0.5, np.array([7.0, 0.0]))
    order.append("planned")
    assert order == ["swap", "planned"] and plan.actions[0, 0] == 7.0
    assert worker.latest_plan() is plan


def test_action_at_picks_the_period_containing_now_and_ends_with_the_plan():
    plan = Plan(actions=np.arange(5.0)[:, None], state_stamp=10.0, dt=DT, plan_time=0.01)
    assert plan.action_at(9.99) is None
    assert plan.action_at(10.0)[0] == 0.0
    assert plan.action_at(10.0 + 2.5 * DT)[0] == 2.0
    assert plan.action_at(10.0 + 3 * DT)[0] == 3.0  # exactly on a period boundary: the new period
    assert plan.action_at(10.0 + 5 * DT) is None
