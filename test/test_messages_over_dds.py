"""The generated messages cross a process boundary over Fast DDS intact (real typesupport, real DDS)."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from support import wait_for

SCRIPTS = Path(__file__).parent / "scripts"
sys.path.insert(0, str(SCRIPTS))
from publish_messages import LATCHED, expected_content  # noqa: E402


@pytest.fixture
def publisher_process():
    seed = 1234
    process = subprocess.Popen([sys.executable, str(SCRIPTS / "publish_messages.py"), str(seed)])
    yield seed
    process.terminate()
    process.wait(timeout=10)


def test_transition_and_4mib_model_update_cross_processes(ros_executor, publisher_process):
    import rclpy

    from mbrl_ros.msg import ModelUpdate, Transition

    received: dict = {}
    node = rclpy.create_node("receiver", context=ros_executor.context)
    node.create_subscription(Transition, "transitions", lambda m: received.setdefault("transition", m), LATCHED)
    node.create_subscription(ModelUpdate, "model_update", lambda m: received.setdefault("update", m), LATCHED)
    ros_executor.add_node(node)

    assert wait_for(lambda: len(received) == 2, timeout=60), f"received only {sorted(received)}"
    expected = expected_content(publisher_process)

    transition = received["transition"]
    assert transition.robot_id == "hand_0"
    assert list(transition.state) == expected["state"]
    assert list(transition.action) == expected["action"]
    assert list(transition.next_state) == expected["next_state"]
    assert transition.reward == expected["reward"]
    assert transition.done is True and transition.dt == 0.05
    assert transition.header.stamp.sec > 0

    update = received["update"]
    weights = bytes(update.weights)
    assert len(weights) == 4 * 1024 * 1024
    assert weights == expected["weights"]
    assert update.sha256 == hashlib.sha256(weights).hexdigest() == expected["sha256"]
    assert (update.version, update.kind, update.metadata_json) == (7, "ensemble", '{"members": 3}')
