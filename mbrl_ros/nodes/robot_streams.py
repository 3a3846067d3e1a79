"""One robot's state and command messages turned into transitions: the code path the live learner and offline
training from a bag share.

:class:`RobotStreams` takes the messages a robot publishes anyway (``/joint_states``, body poses and twists,
``<controller>/commands``, the bridge's episode summaries), assembles its state vectors
(:class:`~mbrl_ros.nodes.state_assembly.TopicStateAssembler`) and its transitions at the control period
(:class:`~mbrl_ros.learning.TransitionAssembler`). The dynamics learner feeds it from its subscriptions, the
offline trainer (:mod:`mbrl_ros.offline`) from a recorded bag, so both build the same transitions from the
same messages. :func:`transition_batch` adds the task's rewards and the episode ends.
"""

from dataclasses import dataclass

import numpy as np
import torch
from geometry_msgs.msg import PoseStamped, TwistStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from mbrl_ros.data.transitions import TransitionBatch
from mbrl_ros.learning import Transition, TransitionAssembler
from mbrl_ros.msg import EpisodeSummary
from mbrl_ros.nodes.conversions import MessageError, command_array, stamp_to_seconds
from mbrl_ros.nodes.state_assembly import JOINT_STATES_TOPIC, TopicStateAssembler, pose_topic, twist_topic
from mbrl_ros.tasks import Task


@dataclass(frozen=True)
class RobotTopics:
    """The topics one robot's transitions are built from (absolute names)."""

    joint_states: str
    poses: dict[str, str]  # body key -> topic
    twists: dict[str, str]  # body key -> topic
    commands: str
    episodes: str

    @classmethod
    def of(cls, task: Task, namespace: str = "", bridge: str = "mujoco_bridge",
           controller: str = "forward_command_controller") -> "RobotTopics":
        """The topics of the robot in ``namespace`` ("" is the root), as the learner's parameters name them."""
        prefix = f"/{namespace.strip('/')}" if namespace.strip("/") else ""
        return cls(
            joint_states=prefix + JOINT_STATES_TOPIC,
            poses={body: prefix + pose_topic(body, bridge) for body in task.layout.pose_bodies},
            twists={body: prefix + twist_topic(body, bridge) for body in task.layout.twist_bodies},
            commands=f"{prefix}/{controller.strip('/')}/commands",
            episodes=f"{prefix}/{bridge.strip('/')}/episode",
        )

    def state_topics(self) -> list[str]:
        return [self.joint_states, *self.poses.values(), *self.twists.values()]


class RobotStreams:
    """Builds one robot's transitions from its messages, in arrival order.

    Every ``add_*`` method returns the transitions that became complete (possibly none) and raises
    :class:`~mbrl_ros.nodes.conversions.MessageError` for a message it cannot use (which changes nothing).

    Args:
        task: the task (state layout, action size, control period ``dt``).
        tolerance: allowed deviation of the state spacing from ``dt``, as a fraction of ``dt``.
    """

    def __init__(self, task: Task, tolerance: float = 0.25):
        self.task = task
        self.states = TopicStateAssembler(task.layout)
        self.transitions = TransitionAssembler(task.dt, tolerance)
        self.newest_stamp = -np.inf  # s, the newest complete state's stamp

    def add_joint_state(self, msg: JointState) -> list[Transition]:
        self.states.add_joint_state(msg)
        return self._take_complete_state()

    def add_pose(self, body: str, msg: PoseStamped) -> list[Transition]:
        self.states.add_pose(body, msg)
        return self._take_complete_state()

    def add_twist(self, body: str, msg: TwistStamped) -> list[Transition]:
        self.states.add_twist(body, msg)
        return self._take_complete_state()

    def add_command(self, msg: Float64MultiArray, now: float) -> list[Transition]:
        """A command received at ``now`` (s, on the clock of the state stamps)."""
        action = command_array(msg, self.task.action_dim)
        # Commands carry no stamp: a command is in response to the newest state, and never older than it.
        return self.transitions.add_command(max(now, self.newest_stamp), action)

    def end_episode(self, msg: EpisodeSummary) -> list[Transition]:
        """The episode ended at the summary's stamp (its last state, whatever arrived first)."""
        return self.transitions.cut(at=stamp_to_seconds(msg.header.stamp))

    def _take_complete_state(self) -> list[Transition]:
        complete = self.states.complete()
        if complete is None:
            return []
        stamp, state = complete
        if not np.all(np.isfinite(state)):
            raise MessageError("the assembled state has NaN or inf entries")
        self.newest_stamp = max(self.newest_stamp, stamp)
        return self.transitions.add_state(stamp, state)


def transition_batch(task: Task, transitions: list[Transition], last_done: bool = False) -> TransitionBatch:
    """The transitions as a batch with the task's rewards; ``last_done`` marks the last one as an episode end."""
    states = np.stack([t.state for t in transitions]).astype(np.float32)
    actions = np.stack([t.action for t in transitions]).astype(np.float32)
    next_states = np.stack([t.next_state for t in transitions]).astype(np.float32)
    with torch.no_grad():
        rewards = task.reward(*(torch.as_tensor(x) for x in (states, actions, next_states))).numpy()
    dones = np.zeros(len(transitions), dtype=bool)
    dones[-1] = last_done
    return TransitionBatch(states, actions, next_states, rewards.astype(np.float32), dones)
