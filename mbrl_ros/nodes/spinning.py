"""How every node executable of the package parses its command line and spins its node."""

import argparse
import sys
import threading
from collections.abc import Callable

import rclpy
from rclpy.executors import Executor, ExternalShutdownException
from rclpy.node import Node

# What a node's constructor raises when its parameters are unusable (its own checks, or rclpy's).
REFUSED_PARAMETER_ERRORS = (ValueError, KeyError, OSError, RuntimeError)


def refusal_message(error: Exception) -> str:
    """The reason a node refused its parameters, with a hint where rclpy's own words do not say what to do."""
    if "PARAMETER_NOT_SET" in str(error):  # rclpy's words for a parameter of unknown type
        return f"{error} (an empty list in the parameter file? ROS 2 cannot type one: leave the key out)"
    return str(error)


class BackgroundSpinner:
    """Spins an executor in a thread until :meth:`stop`, which joins that thread and only then shuts the executor down.

    rclpy's ``Executor.shutdown`` does not wait for a ``spin`` in another thread: it destroys the executor's guard
    condition while that thread may still be in ``spin_once``, which then dies with ``InvalidHandle: cannot use
    Destroyable because destruction was requested`` (ros2/rclpy#968). Here the thread leaves its loop first.
    """

    def __init__(self, executor: Executor, name: str = "executor", poll_period: float = 0.1):
        """
        Args:
            executor: what to spin; shut down by :meth:`stop`.
            name: the thread's name.
            poll_period: s; the longest ``spin_once`` wait, so the most :meth:`stop` waits for an idle thread.
        """
        self.executor = executor
        self._stopping = threading.Event()
        self._poll_period = poll_period
        self._thread = threading.Thread(target=self._spin, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _spin(self) -> None:
        while not self._stopping.is_set():
            self.executor.spin_once(timeout_sec=self._poll_period)

    def stop(self, timeout: float = 10.0) -> None:
        """Ends the spinning (the running callback finishes first), then shuts the executor down."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        self.executor.shutdown(timeout_sec=timeout)


def spin_until_shutdown(node: Node) -> None:
    """Spins ``node`` on a single-threaded executor until Ctrl-C or SIGTERM, then destroys it.

    Single-threaded on purpose: the heavy work (planning, training) runs in the nodes' own threads, and rclpy's
    MultiThreadedExecutor re-dispatches ready timers and subscriptions whose callbacks are still queued, which
    under load snowballs into thousands of futures a second that starve every callback for seconds.
    """
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # SIGINT/SIGTERM shut the context down from a signal handler, possibly while a callback was publishing:
        # whatever that callback raises then is part of the shutdown, not an error.
        if rclpy.ok(context=node.context):
            raise
    finally:
        node.destroy_node()


def run_node(node_class: Callable[[], Node], name: str, description: str, argv: list[str] | None = None) -> int:
    """The body of every node executable: ``--help``, then the node spun until shutdown; returns the exit code.

    Args:
        node_class: builds the node from the process's ROS arguments; raises for unusable parameters.
        name: the executable's name, for ``--help`` and messages.
        description: the ``--help`` text.
        argv: the command line (None: ``sys.argv``).

    Returns:
        0, or 2 with a message on stderr when the node refused its parameters.
    """
    argv = list(sys.argv if argv is None else argv)
    parser = argparse.ArgumentParser(prog=name, description=description,
                                     epilog="ROS arguments follow --ros-args (e.g. --params-file config.yaml)")
    parser.parse_args(rclpy.utilities.remove_ros_args(argv)[1:])
    with rclpy.init(args=argv):
        try:
            node = node_class()
        except REFUSED_PARAMETER_ERRORS as error:
            print(f"{name}: {refusal_message(error)}", file=sys.stderr)
            return 2
        spin_until_shutdown(node)
    return 0
