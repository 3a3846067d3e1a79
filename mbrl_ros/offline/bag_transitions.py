"""Transitions from a recorded bag, built exactly as the live dynamics learner builds them from its topics.

The bag's messages are replayed in their recorded (receive) order through
:class:`~mbrl_ros.nodes.robot_streams.RobotStreams`, the learner's own code path. Commands are stamped as the
learner stamps them, with the learner's clock at their arrival: the newest ``/clock`` under ``use_sim_time``,
else the receive time the bag recorded. Messages that cannot be used (wrong joint names, wrong sizes, NaN,
undecodable bytes) are skipped and counted per topic, with the first reason; a bag that yields no transition,
lacks a needed topic or cannot be read to its end is an :class:`OfflineDataError` that names the topic, the
counts and the reason.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from tqdm import tqdm

from mbrl_ros.data.bags import BagError, bag_topics, read_bag
from mbrl_ros.data.transitions import TransitionBatch
from mbrl_ros.learning import AssemblerStats, Transition
from mbrl_ros.msg import EpisodeSummary
from mbrl_ros.nodes.conversions import stamp_to_seconds
from mbrl_ros.nodes.robot_streams import RobotStreams, RobotTopics, transition_batch
from mbrl_ros.offline.config import LearnerSettings

CLOCK_TOPIC = "/clock"
_TYPE_NAMES = {JointState: "sensor_msgs/msg/JointState", PoseStamped: "geometry_msgs/msg/PoseStamped",
               TwistStamped: "geometry_msgs/msg/TwistStamped", Float64MultiArray: "std_msgs/msg/Float64MultiArray",
               EpisodeSummary: "mbrl_ros/msg/EpisodeSummary", Clock: "rosgraph_msgs/msg/Clock"}


class OfflineDataError(ValueError):
    """A bag that cannot give the transitions asked for; the text names the bag, the topics and the counts."""


@dataclass
class TopicReport:
    """What happened to one topic's messages."""

    messages: int = 0  # read from the bag
    rejected: int = 0  # skipped as unusable
    first_error: str = ""  # why the first rejected one was

    def describe(self, topic: str) -> str:
        text = f"{topic}: {self.messages} messages"
        return text + (f", {self.rejected} rejected (first: {self.first_error})" if self.rejected else "")


@dataclass
class BagTransitions:
    """The transitions of a bag and how they were obtained.

    Attributes:
        batch: all transitions, robot after robot, each robot's in time order (rewards from the task).
        robot: (N,) index into the settings' ``robots`` of each transition's robot.
        starts: (N,) time of each transition's state (s, the robot's stamps).
        stamps: (N,) time of each transition's next state (s).
        topics: per topic read, its counts and rejections.
        assembler: per robot namespace, what the transition assembler dropped (gaps, missing commands, late).
    """

    batch: TransitionBatch
    robot: np.ndarray
    starts: np.ndarray
    stamps: np.ndarray
    topics: dict[str, TopicReport] = field(default_factory=dict)
    assembler: dict[str, AssemblerStats] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.batch)

    def chained(self) -> np.ndarray:
        """(N,) whether transition i + 1 continues transition i (same robot, its state is i's next state)."""
        follows = self.batch.chained()
        follows[:-1] &= self.robot[1:] == self.robot[:-1]
        return follows

    def within(self, start: float, end: float) -> "BagTransitions":
        """The transitions from states measured at or after ``start`` to states at or before ``end`` (s)."""
        keep = (self.starts >= start) & (self.stamps <= end)
        return BagTransitions(self.batch[keep], self.robot[keep], self.starts[keep], self.stamps[keep], self.topics,
                              self.assembler)

    def warnings(self) -> list[str]:
        """One line per topic with rejected messages."""
        return [report.describe(topic) for topic, report in self.topics.items() if report.rejected]


def transitions_from_bag(path: str | os.PathLike, settings: LearnerSettings, progress: bool = True) -> BagTransitions:
    """Replays a bag through the learner's code path; see the module docstring.

    Args:
        path: the bag directory (rosbag2, MCAP or SQLite storage).
        settings: the learner's settings (task, robots, topic names, tolerance, clock).
        progress: show a progress bar over the messages.

    Raises:
        OfflineDataError: unreadable, truncated or corrupted bag; a needed topic missing or of the wrong type;
            no transition at all (with each topic's counts and rejections).
    """
    path = Path(path)
    try:
        available = bag_topics(path)
    except BagError as error:
        raise OfflineDataError(str(error)) from error
    robots = [RobotStreams(settings.task, settings.tolerance) for _ in settings.robots]
    topics = [RobotTopics.of(settings.task, namespace, settings.bridge, settings.controller)
              for namespace in settings.robots]
    handlers = _handlers(path, available, robots, topics)
    if settings.use_sim_time and CLOCK_TOPIC not in available:
        raise OfflineDataError(f"{path}: the learner runs on simulated time (use_sim_time) but the bag has no "
                               f"{CLOCK_TOPIC} to stamp the commands with; topics: {_listing(available)}")
    reports = {topic: TopicReport() for topic in handlers}
    collected: list[list[tuple[Transition, bool]]] = [[] for _ in robots]
    clock = -np.inf
    total = sum(available[topic][1] for topic in handlers) + available.get(CLOCK_TOPIC, ("", 0))[1]
    wanted = set(handlers) | ({CLOCK_TOPIC} if settings.use_sim_time else set())
    bar = tqdm(total=total, desc=f"reading {path.name}", unit="msg", disable=not progress)
    try:
        for message in read_bag(path, wanted):
            bar.update()
            if message.topic == CLOCK_TOPIC:
                clock = stamp_to_seconds(deserialize_message(message.data, Clock).clock)
                continue
            report = reports[message.topic]
            report.messages += 1
            now = clock if settings.use_sim_time else message.stamp_ns * 1e-9
            index, handle, message_type = handlers[message.topic]
            try:
                transitions, done = handle(deserialize_message(message.data, message_type), now)
            except Exception as error:  # any unusable message is counted and skipped, as live
                report.rejected += 1
                report.first_error = report.first_error or f"{type(error).__name__}: {error}"
                continue
            collected[index] += [(t, done and k == len(transitions) - 1) for k, t in enumerate(transitions)]
    except BagError as error:
        raise OfflineDataError(f"{error}; the bag is truncated or corrupted ({bar.n} of the {total} messages "
                               f"needed read; 'ros2 bag reindex' recovers a bag cut short)") from error
    finally:
        bar.close()
    short = [f"{topic}: {report.messages} of {available[topic][1]}" for topic, report in reports.items()
             if report.messages < available[topic][1]]
    if short:
        raise OfflineDataError(f"{path}: the bag is corrupted or truncated: fewer messages could be read than its "
                               f"metadata lists ({'; '.join(short)})")
    for index, robot in enumerate(robots):  # the bag ended: what is complete counts
        collected[index] += [(t, False) for t in robot.transitions.cut()]
    result = _assembled(settings, collected, reports, robots)
    if not len(result):
        dropped = ", ".join(f"{settings.robots[k] or '(root)'} {robot.transitions.stats}"
                            for k, robot in enumerate(robots))
        raise OfflineDataError(f"{path}: no transitions could be built for task {settings.task.name}; "
                               + "; ".join(report.describe(topic) for topic, report in reports.items())
                               + f"; assembler: {dropped}")
    return result


def _handlers(path: Path, available: dict[str, tuple[str, int]], robots: list[RobotStreams],
              topics: list[RobotTopics]) -> dict[str, tuple[int, Callable, type]]:
    """topic -> (robot index, handler(message, now) -> (transitions, episode ended), message class)."""
    handlers: dict[str, tuple[int, Callable, type]] = {}
    missing = []
    for index, (robot, names) in enumerate(zip(robots, topics, strict=True)):
        needed = {names.joint_states: (JointState, lambda msg, now, r=robot: (r.add_joint_state(msg), False)),
                  names.commands: (Float64MultiArray, lambda msg, now, r=robot: (r.add_command(msg, now), False))}
        for body, topic in names.poses.items():
            needed[topic] = (PoseStamped, lambda msg, now, r=robot, b=body: (r.add_pose(b, msg), False))
        for body, topic in names.twists.items():
            needed[topic] = (TwistStamped, lambda msg, now, r=robot, b=body: (r.add_twist(b, msg), False))
        optional = {names.episodes: (EpisodeSummary, lambda msg, now, r=robot: (r.end_episode(msg), msg.terminated))}
        for topic, (message_type, handle) in (needed | optional).items():
            if topic not in available:
                if topic in needed:
                    missing.append(topic)
                continue
            if available[topic][0] != _TYPE_NAMES[message_type]:
                raise OfflineDataError(f"{path}: topic {topic} carries {available[topic][0]} "
                                       f"({available[topic][1]} messages), expected {_TYPE_NAMES[message_type]}")
            handlers[topic] = (index, handle, message_type)
    if missing:
        raise OfflineDataError(f"{path}: the bag lacks the topic(s) {missing} the learner reads; it holds "
                               f"{_listing(available)}")
    return handlers


def _assembled(settings: LearnerSettings, collected: list[list[tuple[Transition, bool]]],
               reports: dict[str, TopicReport], robots: list[RobotStreams]) -> BagTransitions:
    batches, robot_index, starts, stamps = [], [], [], []
    for index, pairs in enumerate(collected):
        if not pairs:
            continue
        batch = transition_batch(settings.task, [t for t, _ in pairs])
        batches.append(TransitionBatch(batch.states, batch.actions, batch.next_states, batch.rewards,
                                       np.array([done for _, done in pairs], dtype=bool)))
        robot_index.append(np.full(len(pairs), index))
        starts.append(np.array([t.stamp - t.dt for t, _ in pairs]))
        stamps.append(np.array([t.stamp for t, _ in pairs]))
    if batches:
        batch = TransitionBatch.concatenate(batches)
    else:
        state_dim, action_dim = settings.task.state_dim, settings.task.action_dim
        batch = TransitionBatch(np.zeros((0, state_dim), np.float32), np.zeros((0, action_dim), np.float32),
                                np.zeros((0, state_dim), np.float32), np.zeros(0, np.float32), np.zeros(0, bool))
    return BagTransitions(
        batch=batch, robot=np.concatenate(robot_index) if robot_index else np.zeros(0, int),
        starts=np.concatenate(starts) if starts else np.zeros(0),
        stamps=np.concatenate(stamps) if stamps else np.zeros(0), topics=reports,
        assembler={settings.robots[k]: robot.transitions.stats for k, robot in enumerate(robots)},
    )


def _listing(available: dict[str, tuple[str, int]]) -> str:
    return ", ".join(f"{topic} ({count} {msgtype})" for topic, (msgtype, count) in sorted(available.items())) or "none"
