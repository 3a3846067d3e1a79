"""Publishes one Transition and one 4 MiB ModelUpdate, derived from a seed, then stays up until killed.

Usage: python publish_messages.py SEED
Run by test_messages_over_dds.py as a separate process; the test rebuilds the same content from the seed.
"""

import hashlib
import sys
import time

import numpy as np
import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from mbrl_ros.msg import ModelUpdate, Transition

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
WEIGHT_BYTES = 4 * 1024 * 1024


def expected_content(seed: int) -> dict:
    """The content both processes agree on for ``seed``."""
    rng = np.random.default_rng(seed)
    weights = rng.integers(0, 256, WEIGHT_BYTES, dtype=np.uint8).tobytes()
    return {
        "state": rng.normal(size=61).tolist(),
        "action": rng.uniform(-1, 1, size=20).tolist(),
        "next_state": rng.normal(size=61).tolist(),
        "reward": float(rng.normal()),
        "weights": weights,
        "sha256": hashlib.sha256(weights).hexdigest(),
    }


def main(seed: int) -> None:
    content = expected_content(seed)
    rclpy.init()
    node = rclpy.create_node("test_message_publisher")
    transition = Transition(
        robot_id="hand_0", state=content["state"], action=content["action"],
        next_state=content["next_state"], reward=content["reward"], done=True, dt=0.05,
    )
    transition.header.stamp = node.get_clock().now().to_msg()
    update = ModelUpdate(
        version=7, kind="ensemble", metadata_json='{"members": 3}',
        weights=content["weights"], sha256=content["sha256"],
    )
    node.create_publisher(Transition, "transitions", LATCHED).publish(transition)
    node.create_publisher(ModelUpdate, "model_update", LATCHED).publish(update)
    print("published", flush=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)


if __name__ == "__main__":
    main(int(sys.argv[1]))
