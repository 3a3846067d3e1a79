"""Fixtures shared by the model tests."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One torch thread per test: on a machine shared with other work, two threads can stall OpenMP barriers
    on a descheduled thread and make small trainings ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
