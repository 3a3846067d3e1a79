"""bag_recorder: records topics off DDS into a rosbag2 bag (MCAP), as serialised bytes, untouched.

Topics are matched by name as they appear in the graph (re-checked every ``discovery_period`` seconds), each
subscribed with the QoS its publishers offer (best effort if any publisher is, transient local if all are,
so a latched ModelUpdate is recorded too). Messages are stamped with their receive time on the node's clock
(simulated time under use_sim_time), as `ros2 bag record` does. The bag is finished when the node is
destroyed; a bag cut short by a crash is recovered with `ros2 bag reindex`.
"""

import importlib
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from mbrl_ros.data.bags import BagWriter, message_typestore
from mbrl_ros.nodes.spinning import run_node

_DEPTH = 1000  # per-topic queue: a recorder should not drop messages in bursts
_PROVISIONAL_QOS = QoSProfile(depth=_DEPTH, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.VOLATILE)


def message_class(type_name: str) -> type:
    """The rclpy message class of ``pkg/msg/Type``."""
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


class BagRecorder(Node):
    """Records the named topics into a new bag directory.

    Parameters:
        output (str): the bag directory to create.
        topics (string array): topic names to record (absolute, e.g. /joint_states).
        discovery_period (float, seconds): how often the graph is searched for topics not yet recorded.
    """

    def __init__(self, output: str | None = None, topics: Iterable[str] = (), **node_kwargs):
        super().__init__("bag_recorder", **node_kwargs)
        self.declare_parameter("output", output or "")
        self.declare_parameter("topics", list(topics))
        self.declare_parameter("discovery_period", 0.5)
        path = self.get_parameter("output").value
        if not path:
            raise ValueError("bag_recorder needs the 'output' parameter (the bag directory to create)")
        self._wanted = set(self.get_parameter("topics").value)
        self._typestore = message_typestore()
        self._writer = BagWriter(Path(path), self._typestore)
        self._lock = threading.Lock()
        self._recorded: dict[str, object] = {}  # topic -> its raw subscription
        self._provisional: set[str] = set()  # subscribed before any publisher was seen
        self.create_timer(self.get_parameter("discovery_period").value, self.discover)
        self.discover()
        self.get_logger().info(f"recording {sorted(self._wanted)} into {path}")

    @property
    def counts(self) -> dict[str, int]:
        """Messages recorded so far, per topic."""
        with self._lock:
            return dict(self._writer.counts)

    def wait_for(self, topic: str, count: int, timeout: float) -> bool:
        """Waits (while another thread spins this node) until ``count`` messages of ``topic`` are recorded.

        Returns:
            whether they were within ``timeout`` seconds (wall clock).
        """
        deadline = time.monotonic() + timeout
        while self.counts.get(topic, 0) < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def discover(self) -> None:
        """Subscribes to every wanted topic the graph knows, with the QoS its publishers offer.

        A topic known only from its subscribers (the other nodes of a run, started before the robot) is
        subscribed at once, reliable and volatile, so that the first messages of a fast lockstep run are not
        lost to the discovery period; once its publishers appear, the subscription is remade if they need another
        QoS (best effort, or latched and nothing recorded yet).
        """
        for topic, types in self.get_topic_names_and_types():
            if topic not in self._wanted or (topic in self._recorded and topic not in self._provisional):
                continue
            if len(types) != 1 or types[0] not in self._typestore.types:
                self.get_logger().error(f"not recording {topic}: its type {types} has no known definition")
                self._wanted.discard(topic)
                continue
            publishers = self.get_publishers_info_by_topic(topic)
            qos = _qos_matching(publishers) if publishers else _PROVISIONAL_QOS
            if topic in self._recorded:  # provisional until now
                if not publishers:
                    continue
                self._provisional.discard(topic)
                needs_history = qos.durability == DurabilityPolicy.TRANSIENT_LOCAL and not self.counts.get(topic)
                if qos.reliability == _PROVISIONAL_QOS.reliability and not needs_history:
                    continue
                self.destroy_subscription(self._recorded.pop(topic))
            elif not publishers:
                self._provisional.add(topic)
            self._recorded[topic] = self.create_subscription(
                message_class(types[0]), topic, self._recorder_for(topic, types[0]), qos, raw=True,
            )

    def _recorder_for(self, topic: str, msgtype: str):
        def record(data: bytes) -> None:
            with self._lock:
                self._writer.write(topic, msgtype, self.get_clock().now().nanoseconds, data)

        return record

    def destroy_node(self) -> None:
        for subscription in self._recorded.values():
            self.destroy_subscription(subscription)
        with self._lock:
            self._writer.close()
        super().destroy_node()


def _qos_matching(publishers) -> QoSProfile:
    best_effort = any(p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for p in publishers)
    latched = all(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in publishers)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=_DEPTH,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def main(argv: list[str] | None = None) -> int:
    return run_node(BagRecorder, "bag_recorder", __doc__.splitlines()[0], argv)
