"""Test-session set-up shared by all suites.

Every test talks DDS only on this host (loopback and shared memory, no multicast) and in a ROS domain of
its own session, one in which no other participant on this host has bound its ports when the session starts
(unless ``ROS_DOMAIN_ID`` is set), so a test run never sees the topics of another run or of a graph running beside
it. Subprocesses inherit the same environment.
"""

import os
from collections.abc import Iterator

import pytest

import mbrl_ros.sim  # noqa: F401  (chooses MuJoCo's headless OpenGL backend before a test module imports mujoco)
from mbrl_ros.nodes.dds_domain import unused_domain_id

from support import REPO_ROOT

if not os.environ.get("ROS_DOMAIN_ID"):
    os.environ["ROS_DOMAIN_ID"] = str(unused_domain_id(preferred=1 + os.getpid() % 100))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO_ROOT / "config" / "fastdds_localhost.xml"))


def pytest_configure(config: pytest.Config) -> None:
    """Tests use one torch thread: their tensors are small, and two threads per test process only fight each
    other and the ROS executors for the cores (timing-sensitive tests set their own count where they need it)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def ros_executor() -> Iterator["rclpy.executors.SingleThreadedExecutor"]:  # noqa: F821
    """A fresh rclpy context with a single-threaded executor spinning in a background thread, like the nodes'.

    Nodes created with ``context=executor.context`` and added to it are spun until the test ends. Not rclpy's
    MultiThreadedExecutor: it re-dispatches a ready timer or subscription while its callback is queued, and under
    load these duplicates snowball into thousands of futures a second that starve every callback for seconds.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from mbrl_ros.nodes.spinning import BackgroundSpinner

    context = rclpy.Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    spinner = BackgroundSpinner(executor)
    spinner.start()
    try:
        yield executor
    finally:
        nodes = list(executor.get_nodes())
        spinner.stop(timeout=5)  # before the nodes go: no callback may still run
        for node in nodes:
            node.destroy_node()
        context.try_shutdown()
