"""dynamics_learner: learns a robot's dynamics from the topics it publishes anyway, and publishes the models.

For every robot (a namespace in ``robots``; "" is the root) it reads the state topics of the task's layout
(``/joint_states``, ``/<bridge>/<body>_pose`` / ``_twist``) and the commands the robot receives
(``<controller>/commands``), and builds transitions (s, a, s') at the task's control period with
:class:`~mbrl_ros.learning.TransitionAssembler` (stamp-aligned, gaps dropped, out-of-order arrivals put back
in order, no transition across an episode end ``/<bridge>/episode``). It also accepts ready-made
``mbrl_ros/Transition`` messages on ``transitions``.

Transitions are persisted in ``data_dir`` (crash-safe); the model is retrained in the background every
``retrain.every_transitions`` new transitions, at episode ends, or on ``~/train`` (std_srvs/Trigger), continuing
the last model (every ``retrain.fresh_every``-th version from new initial weights), and each
new model is published as ``mbrl_ros/ModelUpdate`` on ``model_topic`` (transient local: late joiners get the
newest) with an increasing version and saved atomically. Restarted on the same ``data_dir``, it resumes its
transitions, model and version, and publishes that model at once.

Configuration sections: ``model`` (``kind`` and the architecture, e.g. ``ensemble_size``), ``trainer``
(:class:`~mbrl_ros.models.TrainerConfig`), ``retrain`` (:class:`~mbrl_ros.learning.RetrainPolicy`).

Policy export (``policy_export``, model-based -> model-free): after every new model it behaviour-clones the
commands the robot received in the newest ``policy_window`` transitions (the controller's MPC actions) into a
:class:`~mbrl_ros.policies.PolicyNetwork` (section ``policy_imitation``: :class:`~mbrl_ros.policies.ImitationConfig`)
and publishes it as a ``policy`` ModelUpdate on ``policy_topic``, for a controller's ``planner: policy``.
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from mbrl_ros.learning import Learner, ModelRelease, RetrainPolicy, Transition, model_factory
from mbrl_ros.models import TrainerConfig, model_to_payload
from mbrl_ros.msg import EpisodeSummary, ModelUpdate
from mbrl_ros.msg import Transition as TransitionMessage
from mbrl_ros.nodes.conversions import MessageError, diagnostic_array
from mbrl_ros.nodes.parameters import declare_defaults, section
from mbrl_ros.nodes.robot_streams import RobotStreams, RobotTopics, transition_batch
from mbrl_ros.nodes.spinning import run_node
from mbrl_ros.policies import ImitationConfig, clone_policy
from mbrl_ros.settings import dataclass_from_dict
from mbrl_ros.tasks import make_task

STATE_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
# Transition messages may come in bursts (a robot replaying an episode): a deep queue keeps every one.
TRANSITION_QOS = QoSProfile(depth=10000, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
LOG_THROTTLE = 1.0  # s between repeated errors of one kind

PARAMETERS: dict[str, tuple[Any, str]] = {
    "task": ("shadow_hand_cube", "task name or package.module:Class (mbrl_ros.tasks); options in task_options.*"),
    "robots": ([""], "namespaces of the robots to learn from ('' is the root namespace)"),
    "bridge": ("mujoco_bridge", "node whose ~/<body>_pose, ~/<body>_twist and ~/episode topics are read"),
    "controller": ("forward_command_controller", "commands are read from <controller>/commands"),
    "data_dir": ("mbrl_data", "where transitions and models are kept (resumed if it exists)"),
    "model_topic": ("/model_update", "topic the models are published on"),
    "transition_tolerance": (0.25, "allowed deviation of state spacing from the control period (fraction)"),
    "flush_interval": (1.0, "s between writes of new transitions to disk (the most a crash can lose)"),
    "training_threads": (1, "torch threads for training"),
    "policy_export": (False, "after every model, clone the received commands into a policy and publish it"),
    "policy_topic": ("/policy_update", "topic the exported policies are published on"),
    "policy_window": (5000, "newest transitions the exported policy imitates"),
}


class DynamicsLearner(Node):
    """The learner node; see the module docstring. Raises ValueError for unusable parameters."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("dynamics_learner", automatically_declare_parameters_from_overrides=True, **node_options)
        value = declare_defaults(self, PARAMETERS)
        self.task = make_task(value["task"], **section(self, "task_options"))
        torch.set_num_threads(int(value["training_threads"]))
        factory = model_factory(self.task, section(self, "model"))
        trainer = dataclass_from_dict(TrainerConfig, {"progress": False, **section(self, "trainer")}, "trainer")
        policy = dataclass_from_dict(RetrainPolicy, section(self, "retrain"), "retrain")
        self._publisher = self.create_publisher(ModelUpdate, value["model_topic"], LATCHED_QOS)
        self._init_policy_export(value)
        self.learner = Learner(Path(value["data_dir"]), factory, trainer, policy, self._publish_release,
                               float(value["flush_interval"]), learnable=self.task.learnable)
        self.rejected: dict[str, int] = {}
        if self.learner.latest_release is not None:
            self._publish_release(self.learner.latest_release)
        group = MutuallyExclusiveCallbackGroup()  # streams are handled one message at a time, in order
        self._robots = {}
        for namespace in value["robots"]:
            robot = self._robots[namespace] = RobotStreams(self.task, float(value["transition_tolerance"]))
            topics = RobotTopics.of(self.task, namespace, value["bridge"], value["controller"])
            self.create_subscription(JointState, topics.joint_states, self._on_state(robot, "joints"),
                                     STATE_QOS, callback_group=group)
            for body, topic in topics.poses.items():
                self.create_subscription(PoseStamped, topic, self._on_state(robot, "pose", body), STATE_QOS,
                                         callback_group=group)
            for body, topic in topics.twists.items():
                self.create_subscription(TwistStamped, topic, self._on_state(robot, "twist", body), STATE_QOS,
                                         callback_group=group)
            self.create_subscription(Float64MultiArray, topics.commands, self._on_command(robot), STATE_QOS,
                                     callback_group=group)
            self.create_subscription(EpisodeSummary, topics.episodes, self._on_episode_end(robot), STATE_QOS,
                                     callback_group=group)
        self.create_subscription(TransitionMessage, "transitions", self._on_transition, TRANSITION_QOS,
                                 callback_group=group)
        self.create_service(Trigger, "~/train", self._on_train)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", STATE_QOS)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f"learning {self.task.name} from {sorted(self._robots) or ['(root)']}: {len(self.learner.buffer)} "
            f"transitions and model version {self.learner.version} in {value['data_dir']}"
        )

    # ------------------------------------------------------------------------------------------ streams
    def _on_state(self, robot: RobotStreams, kind: str, body: str = ""):
        def on_message(msg: Any) -> None:
            try:
                if kind == "joints":
                    transitions = robot.add_joint_state(msg)
                elif kind == "pose":
                    transitions = robot.add_pose(body, msg)
                else:
                    transitions = robot.add_twist(body, msg)
            except MessageError as error:
                self._reject(kind, error)
                return
            self._store(transitions)

        return on_message

    def _on_command(self, robot: RobotStreams):
        def on_message(msg: Float64MultiArray) -> None:
            try:
                transitions = robot.add_command(msg, self.get_clock().now().nanoseconds * 1e-9)
            except MessageError as error:
                self._reject("commands", error)
                return
            self._store(transitions)

        return on_message

    def _on_episode_end(self, robot: RobotStreams):
        def on_message(msg: EpisodeSummary) -> None:
            self._store(robot.end_episode(msg), last_done=bool(msg.terminated))
            self.learner.end_episode()

        return on_message

    def _on_transition(self, msg: TransitionMessage) -> None:
        state, action, next_state = (np.asarray(v, dtype=np.float64) for v in (msg.state, msg.action, msg.next_state))
        sizes = (self.task.state_dim, self.task.action_dim, self.task.state_dim)
        if (state.shape[0], action.shape[0], next_state.shape[0]) != sizes:
            self._reject("transitions", MessageError(f"sizes {(state.size, action.size, next_state.size)}, "
                                                     f"expected {sizes} for task {self.task.name}"))
            return
        if not all(np.all(np.isfinite(v)) for v in (state, action, next_state)) or not np.isfinite(msg.reward):
            self._reject("transitions", MessageError("NaN or inf values"))
            return
        self.learner.add(state, action, next_state, msg.reward, msg.done)

    def _store(self, transitions: list[Transition], last_done: bool = False) -> None:
        if transitions:
            batch = transition_batch(self.task, transitions, last_done)
            self.learner.add(batch.states, batch.actions, batch.next_states, batch.rewards, batch.dones)

    def _reject(self, source: str, error: Exception) -> None:
        self.rejected[source] = self.rejected.get(source, 0) + 1
        self.get_logger().error(f"rejected {source}: {error}", throttle_duration_sec=LOG_THROTTLE)

    # ------------------------------------------------------------------------------------------ models
    def _publish_release(self, release: ModelRelease) -> None:
        payload = release.payload
        msg = ModelUpdate(version=release.version, kind=payload.kind, metadata_json=payload.metadata_json,
                          weights=payload.weights, sha256=payload.sha256)
        msg.header.stamp = self.get_clock().now().to_msg()
        self._publisher.publish(msg)
        quality = "resumed" if release.validation_nll is None else (
            f"validation MSE {release.validation_mse:.4g}, NLL {release.validation_nll:.4g}")
        self.get_logger().info(f"published model version {release.version} ({release.transitions} transitions, "
                               f"{quality})")
        if self._policy_publisher is not None and len(self.learner.buffer) > 0:
            self._export_policy(release.version)

    # ------------------------------------------------------------------------------------------ policy export
    def _init_policy_export(self, value: dict[str, Any]) -> None:
        self._policy_publisher = None
        if not value["policy_export"]:
            return
        if int(value["policy_window"]) < 1:
            raise ValueError(f"parameter policy_window must be >= 1, got {value['policy_window']}")
        self._policy_window = int(value["policy_window"])
        self._imitation = dataclass_from_dict(ImitationConfig, section(self, "policy_imitation"), "policy_imitation")
        self._policy_publisher = self.create_publisher(ModelUpdate, value["policy_topic"], LATCHED_QOS)

    def _export_policy(self, version: int) -> None:
        """Clones the newest commands into a policy and publishes it (in the training thread)."""
        batch = self.learner.buffer.all()
        states, actions = batch.states[-self._policy_window:], batch.actions[-self._policy_window:]
        low, high = (list(map(float, bound)) for bound in self.task.action_bounds)
        payload = model_to_payload(clone_policy(states, actions, low, high, self._imitation), {"version": version})
        msg = ModelUpdate(version=version, kind=payload.kind, metadata_json=payload.metadata_json,
                          weights=payload.weights, sha256=payload.sha256)
        msg.header.stamp = self.get_clock().now().to_msg()
        self._policy_publisher.publish(msg)
        self.get_logger().info(f"published policy version {version} (imitating {len(states)} commands)")

    def _on_train(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        count, minimum = len(self.learner.buffer), self.learner.policy.min_transitions
        response.success = count >= minimum
        if response.success:
            self.learner.request_training()
            response.message = f"training on {count} transitions in the background"
        else:
            response.message = f"only {count} transitions; training needs {minimum}"
        return response

    def _publish_diagnostics(self) -> None:
        release = self.learner.latest_release
        values = {"transitions": len(self.learner.buffer), "model_version": self.learner.version,
                  "validation_nll": "" if release is None else release.validation_nll,
                  "validation_mse": "" if release is None else release.validation_mse,
                  "rejected_messages": sum(self.rejected.values())}
        for namespace, robot in self._robots.items():
            stats = robot.transitions.stats
            values[f"{namespace or 'root'}/gaps"] = stats.gaps
            values[f"{namespace or 'root'}/late"] = stats.late
        self._diagnostics.publish(diagnostic_array(
            self.get_clock().now().to_msg(), DiagnosticStatus.OK, f"{self.get_name()}: learner",
            f"model version {self.learner.version}", self.task.name, values))

    def destroy_node(self) -> None:
        if hasattr(self, "learner"):  # absent when the constructor refused its parameters
            self.learner.close()  # finishes a round in progress and flushes the transitions
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(DynamicsLearner, "dynamics_learner", __doc__.split("\n")[0], argv)
