"""Offline learning: how fast a recorded bag becomes transitions, against merely reading it, same run.

    .venv/bin/python bench/bench_offline.py            # the figure (about a minute on 2 cores)
    .venv/bin/python bench/bench_offline.py --quick    # a smoke run (seconds)

A Shadow-hand-cube recording is written first (shadow_hand_cube task: /joint_states with 24 joints, object
and goal poses, object twist, /clock and 20-D commands per 0.04 s control step, as the bridge publishes them
in lockstep), then:

- O1, messages per second: `transitions_from_bag` (CDR decoding, state assembly, transition assembly,
  rewards: the learner's code path) against the bound of reading the same messages and decoding them with
  rclpy, nothing else (goal >= 0.5: building the transitions costs at most as much as reading the bag). Both
  passes must see every message; the transitions must be one per step. The figure is also given as robot
  time ingested per second of wall time.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.serialization import deserialize_message, serialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report, set_threads

from mbrl_ros.data.bags import BagWriter, read_bag
from mbrl_ros.nodes.conversions import seconds_to_stamp
from mbrl_ros.offline import learner_settings, transitions_from_bag

CONFIG = """
/**:
  ros__parameters:
    task: shadow_hand_cube
    use_sim_time: true
dynamics_learner:
  ros__parameters:
    controller: hand_controller
"""
CLASSES = {"sensor_msgs/msg/JointState": JointState, "geometry_msgs/msg/PoseStamped": PoseStamped,
           "geometry_msgs/msg/TwistStamped": TwistStamped, "std_msgs/msg/Float64MultiArray": Float64MultiArray,
           "rosgraph_msgs/msg/Clock": Clock}


def write_recording(path: Path, settings, steps: int) -> int:
    """A lockstep-like recording of ``steps`` control steps; returns the number of messages."""
    task, rng = settings.task, np.random.default_rng(0)
    joints = list(task.layout.joints)
    count, log_ns = 0, 0
    with BagWriter(path) as writer:
        for step in range(steps):
            stamp = seconds_to_stamp(step * task.dt)
            state = JointState(name=joints, position=rng.normal(size=len(joints)).tolist(),
                               velocity=rng.normal(size=len(joints)).tolist())
            state.header.stamp = stamp
            messages = [("/clock", "rosgraph_msgs/msg/Clock", Clock(clock=stamp)),
                        ("/joint_states", "sensor_msgs/msg/JointState", state)]
            for body in task.layout.pose_bodies:
                pose = PoseStamped()
                pose.header.stamp = stamp
                pose.pose.position.x, pose.pose.orientation.w = float(rng.normal()), 1.0
                messages.append((f"/mujoco_bridge/{body}_pose", "geometry_msgs/msg/PoseStamped", pose))
            for body in task.layout.twist_bodies:
                twist = TwistStamped()
                twist.header.stamp = stamp
                twist.twist.linear.x = float(rng.normal())
                messages.append((f"/mujoco_bridge/{body}_twist", "geometry_msgs/msg/TwistStamped", twist))
            low, high = task.action_bounds
            messages.append(("/hand_controller/commands", "std_msgs/msg/Float64MultiArray",
                             Float64MultiArray(data=rng.uniform(low, high).tolist())))
            for topic, msgtype, message in messages:
                log_ns += 100_000
                writer.write(topic, msgtype, log_ns, serialize_message(message))
                count += 1
    return count


def read_only(path: Path) -> int:
    """The bound: every message read from the bag and decoded with rclpy, nothing else."""
    count = 0
    for message in read_bag(path):
        deserialize_message(message.data, CLASSES[message.msgtype])
        count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--steps", type=int, default=None, help="control steps recorded (default 20000; quick 500)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of each side (best is kept)")
    args = parser.parse_args()
    set_threads(1)
    steps = args.steps or (500 if args.quick else 20_000)
    repeats = 1 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "hand.yaml"
        config.write_text(CONFIG)
        settings = learner_settings(config)
        bag = Path(directory) / "hand.bag"
        messages = write_recording(bag, settings, steps)
        print(f"recording: {steps} steps of {settings.task.name}, {messages} messages, "
              f"{sum(f.stat().st_size for f in bag.iterdir()) / 1e6:.1f} MB", flush=True)
        ours_times, bound_times = [], []
        for _ in range(repeats):  # interleaved, so both sides see the same machine load
            start = time.perf_counter()
            assert read_only(bag) == messages
            bound_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            data = transitions_from_bag(bag, settings, progress=False)
            ours_times.append(time.perf_counter() - start)
            assert len(data) == steps - 1, f"{len(data)} transitions from {steps} steps"
            assert sum(report.messages for report in data.topics.values()) + steps == messages
    ours, bound = messages / min(ours_times), messages / min(bound_times)
    report("O1 bag -> transitions (messages/s)", ours, bound, 0.5, "read + decode only", " msg/s")
    robot_seconds = (steps - 1) * settings.task.dt
    print(f"    = {robot_seconds / min(ours_times):.0f} s of robot time ingested per second "
          f"({(steps - 1) / min(ours_times):.0f} transitions/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
