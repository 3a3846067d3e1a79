"""Helpers shared by the test suites (imported as ``support``; pytest's conftest holds only set-up and fixtures)."""

import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
# Torch devices the device-generic tests run on: the CPU always, CUDA where the machine has it (CI has none;
# run these suites on a GPU machine to check the CUDA paths, README "Tests").
TORCH_DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Polls ``predicate`` until it is true or ``timeout`` (seconds) passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def detach_node(executor, node, timeout: float = 10.0) -> None:
    """Takes ``node`` off ``executor`` (spinning in another thread) and destroys it once none of its callbacks can run.

    ``remove_node`` alone does not wait: the executor may be inside one of the node's callbacks, or hold callbacks
    it took from a wait set built before the removal, and a node destroyed then makes them raise ``InvalidHandle``
    in the executor's thread. A task queued after the removal runs only after those: the executor yields its tasks
    at the start of a wait, and that wait is built from the nodes it has then.
    """
    executor.remove_node(node)
    barrier = executor.create_task(lambda: None)
    if not wait_for(barrier.done, timeout):
        raise TimeoutError(f"the executor did not come round within {timeout} s to release {node.get_name()}")
    node.destroy_node()
