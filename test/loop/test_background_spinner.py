"""BackgroundSpinner: the spinning thread has left its loop before the executor is shut down (ros2/rclpy#968).
The tests' detach_node: a node leaves a spinning executor only once none of its callbacks can run."""

import threading
import time

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Empty

from mbrl_ros.nodes.spinning import BackgroundSpinner

from support import detach_node


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


class SlowTicker(Node):
    """A node whose timer callback keeps the executor busy nearly all the time, as a loaded controller's does."""

    def __init__(self, name: str, context: Context):
        super().__init__(name, context=context)
        self.publisher = self.create_publisher(Empty, "detach_test", 10)
        self.inside = threading.Event()
        self.calls = 0
        self.create_timer(0.001, self.tick)

    def tick(self) -> None:
        self.inside.set()
        time.sleep(0.03)
        self.publisher.publish(Empty())  # raises InvalidHandle if the node is destroyed meanwhile
        self.calls += 1
        self.inside.clear()


def test_detach_node_returns_only_after_the_callback_the_executor_is_in(ros_executor):
    errors = []
    previous_hook, threading.excepthook = threading.excepthook, lambda args: errors.append(args.exc_value)
    try:
        for round_ in range(5):
            node = SlowTicker(f"detach_test_{round_}", ros_executor.context)
            ros_executor.add_node(node)
            assert node.inside.wait(timeout=10), "the executor never ran the timer"
            detach_node(ros_executor, node)
            assert not node.inside.is_set(), "detach_node returned while the node's callback was running"
            settled = node.calls
            time.sleep(0.1)
            assert node.calls == settled, "the node's callbacks ran after detach_node"
    finally:
        threading.excepthook = previous_hook
    assert errors == []
