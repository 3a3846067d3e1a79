"""The model tests train small networks: one torch thread each, so that a machine shared with other work
(parallel test runs, other helpers) does not stall OpenMP barriers on a descheduled thread."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
