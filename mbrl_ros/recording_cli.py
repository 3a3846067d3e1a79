"""``mbrl-ros record``: record topics into a rosbag2 bag (MCAP) until interrupted or for a set duration."""

import argparse


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "record", help="record topics into a rosbag2 bag (MCAP storage)",
        description="Records the given topics, as they appear in the ROS graph, into a new rosbag2 bag with MCAP "
        "storage, until Ctrl-C or --duration. Readable by ros2 bag, Foxglove, rosbags and mcap.",
    )
    parser.add_argument("output", help="bag directory to create")
    parser.add_argument("topics", nargs="+", help="topics to record, e.g. /joint_states /hand/commands")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import time

    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from mbrl_ros.nodes.bag_recorder import BagRecorder

    with rclpy.init():
        recorder = BagRecorder(args.output, args.topics)
        executor = SingleThreadedExecutor()
        executor.add_node(recorder)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        try:
            while deadline is None or time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            counts = recorder.counts
            recorder.destroy_node()
    print(f"recorded {sum(counts.values())} messages into {args.output}: {counts}")
    return 0
