"""Small cartpole bags written message by message, for the offline tests' bad and good inputs."""

from pathlib import Path

import numpy as np
from rclpy.serialization import serialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from mbrl_ros.data.bags import BagWriter
from mbrl_ros.nodes.conversions import seconds_to_stamp

CONFIG = Path(__file__).parent / "cartpole_short.yaml"
JOINTS = ["slider", "hinge"]
DT = 0.05  # s, the cartpole task's control period
COMMANDS_TOPIC = "/cartpole_controller/commands"


def write_cartpole_bag(path: Path, steps: int = 40, joint_names: list[str] | None = None,
                       bad_commands: set[int] = frozenset(), topics: set[str] | None = None) -> Path:
    """A lockstep-like recording: /clock and /joint_states at each step, then the command answering them.

    Args:
        path: the bag directory to create.
        steps: control steps (``steps`` states, ``steps`` commands).
        joint_names: the names in the JointState messages (default: the cartpole's).
        bad_commands: steps whose command has the wrong size (2 values for 1 actuator).
        topics: write only these topics (default: all three).
    """
    rng = np.random.default_rng(0)
    topics = topics or {"/clock", "/joint_states", COMMANDS_TOPIC}
    log_ns = 1_000_000_000
    position, velocity = np.zeros(2), np.zeros(2)
    with BagWriter(path) as writer:
        for step in range(steps):
            stamp = seconds_to_stamp(1.0 + step * DT)
            state = JointState(name=joint_names or JOINTS, position=position.tolist(), velocity=velocity.tolist())
            state.header.stamp = stamp
            force = float(rng.uniform(-1, 1))
            command = Float64MultiArray(data=[force, 0.0] if step in bad_commands else [force])
            for topic, msgtype, message in (("/clock", "rosgraph_msgs/msg/Clock", Clock(clock=stamp)),
                                            ("/joint_states", "sensor_msgs/msg/JointState", state),
                                            (COMMANDS_TOPIC, "std_msgs/msg/Float64MultiArray", command)):
                log_ns += 1_000_000
                if topic in topics:
                    writer.write(topic, msgtype, log_ns, serialize_message(message))
            velocity = velocity + DT * np.array([force, -np.sin(position[1])])
            position = position + DT * velocity
    return path
