"""Helpers shared by the test suites (imported as ``support``; pytest's conftest holds only set-up and fixtures)."""

import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Polls ``predicate`` until it is true or ``timeout`` (seconds) passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
