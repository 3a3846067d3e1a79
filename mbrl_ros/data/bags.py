"""rosbag2 bags in MCAP storage, written and read with `rosbags` (a kept implementation of the format).

Messages stay in their serialised (CDR) form: the recorder takes them off DDS as bytes, and readers
deserialise them with rclpy, exactly as live subscribers do. Each topic's schema is the message definition
(``ros2msg``) of the installed ROS 2 Kilted types and of this package's own messages, so `ros2 bag info`,
Foxglove, `rosbags` and `mcap` read the bags.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from mbrl_ros.resources import package_share

BAG_FORMAT_VERSION = 9  # rosbag2 metadata version written by ROS 2 Kilted


class BagError(ValueError):
    """A bag that cannot be read: missing, truncated, corrupted or not a rosbag2 bag."""


def message_typestore() -> Typestore:
    """ROS 2 Kilted's standard message types plus this package's (from its installed .msg files)."""
    store = get_typestore(Stores.ROS2_KILTED)
    definitions = {}
    for msg_file in sorted((package_share() / "msg").glob("*.msg")):
        definitions.update(get_types_from_msg(msg_file.read_text(), f"{package_share().name}/msg/{msg_file.stem}"))
    store.register(definitions)
    return store


@dataclass(frozen=True)
class BagMessage:
    """One recorded message: its topic, type name (``pkg/msg/Type``), receive time and CDR bytes."""

    topic: str
    msgtype: str
    stamp_ns: int
    data: bytes


class BagWriter:
    """Appends serialised messages to a new bag directory; a topic's connection is made on its first message.

    Args:
        path: the bag directory to create (must not exist).
        typestore: message definitions; default :func:`message_typestore`.
    """

    def __init__(self, path: str | os.PathLike, typestore: Typestore | None = None):
        self.path = Path(path)
        self._typestore = typestore or message_typestore()
        self._writer = Writer(self.path, version=BAG_FORMAT_VERSION, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections = {}
        self.counts: dict[str, int] = {}

    def write(self, topic: str, msgtype: str, stamp_ns: int, data: bytes) -> None:
        connection = self._connections.get(topic)
        if connection is None:
            if msgtype not in self._typestore.types:
                raise ValueError(f"no definition of message type {msgtype} for topic {topic}")
            connection = self._writer.add_connection(topic, msgtype, typestore=self._typestore)
            self._connections[topic] = connection
        elif connection.msgtype != msgtype:
            raise ValueError(f"topic {topic} carries {connection.msgtype}, not {msgtype}")
        self._writer.write(connection, stamp_ns, data)
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def close(self) -> None:
        """Finishes the bag (writes its metadata); the bag is readable only after this."""
        self._writer.close()

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def bag_topics(path: str | os.PathLike) -> dict[str, tuple[str, int]]:
    """{topic: (message type, message count)} of a bag, from its metadata."""
    with _open(path) as reader:
        return {topic: (info.msgtype, info.msgcount) for topic, info in reader.topics.items()}


def read_bag(path: str | os.PathLike, topics: set[str] | None = None) -> Iterator[BagMessage]:
    """The bag's messages (of ``topics``, default all) in receive-time order.

    Raises:
        BagError: the bag is missing, not a rosbag2 bag, or truncated/corrupted (with how far it got).
    """
    with _open(path) as reader:
        connections = [c for c in reader.connections if topics is None or c.topic in topics]
        count = 0
        try:
            for connection, stamp_ns, data in reader.messages(connections=connections):
                count += 1
                yield BagMessage(connection.topic, connection.msgtype, stamp_ns, bytes(data))
        except Exception as error:
            raise BagError(f"{path}: unreadable after {count} messages ({type(error).__name__}: {error})") from error


@contextmanager
def _open(path: str | os.PathLike) -> Iterator[Reader]:
    path = Path(path)
    if not (path / "metadata.yaml").is_file():
        raise BagError(f"{path} is not a rosbag2 bag (no metadata.yaml)")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as error:
        raise BagError(f"{path}: cannot open the bag, it is truncated, corrupted or was never closed "
                       f"({type(error).__name__}: {error}); 'ros2 bag reindex' recovers a bag cut short") from error
    try:
        yield reader
    finally:
        reader.close()
