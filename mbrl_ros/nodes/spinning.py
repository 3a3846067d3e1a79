"""How every executable of the package spins its node."""

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


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
