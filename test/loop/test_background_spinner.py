"""BackgroundSpinner: the spinning thread has left its loop before the executor is shut down (ros2/rclpy#968)."""

import threading
import time

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from mbrl_ros.nodes.spinning import BackgroundSpinner


class WatchedExecutor(SingleThreadedExecutor):
    """A real executor that records, when it is shut down, whether its spinning thread is still alive."""

    spinning_thread: threading.Thread | None = None
    alive_at_shutdown: list[bool] = []

    def spin_once(self, timeout_sec: float | None = None) -> None:
        self.spinning_thread = threading.current_thread()
        super().spin_once(timeout_sec)

    def shutdown(self, timeout_sec: float | None = None) -> bool:
        alive = self.spinning_thread is not None and self.spinning_thread.is_alive()
        self.alive_at_shutdown = [*self.alive_at_shutdown, alive]
        return super().shutdown(timeout_sec)


def test_stop_joins_the_spinning_thread_before_shutting_the_executor_down_and_callbacks_ran():
    context = Context()
    rclpy.init(context=context)
    node = Node("spinner_test", context=context)
    ticks = []
    node.create_timer(0.001, lambda: ticks.append(time.monotonic()))
    errors = []
    previous_hook, threading.excepthook = threading.excepthook, lambda args: errors.append(args.exc_value)
    try:
        for _ in range(10):  # with a timer always ready, as when a run ends mid-stream
            executor = WatchedExecutor(context=context)
            executor.add_node(node)
            spinner = BackgroundSpinner(executor, poll_period=0.05)
            before = len(ticks)
            spinner.start()
            deadline = time.monotonic() + 10
            while len(ticks) < before + 5 and time.monotonic() < deadline:
                time.sleep(0.001)
            spinner.stop(timeout=5)
            assert len(ticks) >= before + 5, "the spinner ran no callbacks"
            assert executor.alive_at_shutdown == [False]
            settled = len(ticks)
            time.sleep(0.02)
            assert len(ticks) == settled, "callbacks ran after stop()"
    finally:
        threading.excepthook = previous_hook
        node.destroy_node()
        context.try_shutdown()
    assert errors == []
