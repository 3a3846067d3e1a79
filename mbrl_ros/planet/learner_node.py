"""planet_learner: trains a PlaNet world model from a robot's camera, state and command streams.

Subscribes ``/<bridge>/camera/image_raw`` (rgb8 64 x 64), ``/joint_states`` (the task's state, for its reward
``r(s, a, s')``), ``<controller>/commands`` and ``/<bridge>/episode``; joins them into episodes of decisions
(:class:`~mbrl_ros.planet.episodes.StreamEpisodeBuilder`, ``action_repeat`` steps each). From
``min_episodes`` episodes on, every finished episode triggers ``train_steps`` gradient steps in a thread of
its own (skipped while one runs), after which the model is published as mbrl_ros/ModelUpdate (kind "rssm",
transient local) on ``model_topic``, for ``planet_controller``; with ``output_dir`` it is saved there too.
Malformed frames and states are rejected with a log line and counted.
"""

import threading
from typing import Any

import numpy as np
import torch
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray

from mbrl_ros.models import model_to_payload, save_model
from mbrl_ros.msg import EpisodeSummary, ModelUpdate
from mbrl_ros.nodes.conversions import MessageError, image_array, stamp_to_seconds
from mbrl_ros.nodes.parameters import declare_defaults
from mbrl_ros.nodes.spinning import run_node
from mbrl_ros.nodes.state_assembly import JOINT_STATES_TOPIC, TopicStateAssembler
from mbrl_ros.planet.episodes import StreamEpisodeBuilder
from mbrl_ros.planet.tasks import PIXEL_CARTPOLE
from mbrl_ros.planet.training import PlanetConfig, WorldModelLearner
from mbrl_ros.tasks import make_task

QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
LOG_THROTTLE = 1.0  # s between repeated errors of one kind

PARAMETERS: dict[str, tuple[Any, str]] = {
    "task": (PIXEL_CARTPOLE, "task name or package.module:Class: reward, action bounds"),
    "bridge": ("mujoco_bridge", "node whose ~/camera/image_raw and ~/episode are read"),
    "controller": ("forward_command_controller", "commands are read from <controller>/commands"),
    "model_topic": ("/model_update", "where models are published (ModelUpdate, kind rssm)"),
    "output_dir": ("", "directory to save each published model in (empty: none)"),
    "action_repeat": (2, "control steps per decision"),
    "min_episodes": (5, "episodes before the first training round (the seed episodes)"),
    "train_steps": (50, "gradient steps per finished episode"),
    "batch_size": (16, "sequence chunks per gradient step"),
    "chunk_length": (30, "frames per chunk"),
    "depth": (16, "convolution channel multiplier"),
    "deterministic": (100, "GRU state size"),
    "stochastic": (20, "latent size"),
    "hidden": (100, "MLP width"),
    "threads": (1, "torch threads of the training thread"),
    "seed": (0, "seed of the model and the chunk sampler"),
}


class PlanetLearner(Node):
    """The node; see the module docstring."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("planet_learner", automatically_declare_parameters_from_overrides=True, **node_options)
        value = declare_defaults(self, PARAMETERS)
        self.task = make_task(value["task"])
        torch.set_num_threads(int(value["threads"]))
        torch.manual_seed(int(value["seed"]))
        self.config = PlanetConfig(
            task=value["task"], action_repeat=int(value["action_repeat"]), train_steps=int(value["train_steps"]),
            batch_size=int(value["batch_size"]), chunk_length=int(value["chunk_length"]), seed=int(value["seed"]),
            model={name: int(value[name]) for name in ("depth", "deterministic", "stochastic", "hidden")})
        self.builder = StreamEpisodeBuilder(self.task, self.config.action_repeat)
        self.learner = WorldModelLearner(self.config, self.task.action_dim)
        self._min_episodes, self._output_dir = int(value["min_episodes"]), value["output_dir"]
        self._assembler = TopicStateAssembler(self.task.layout)
        self._pending: list = []  # finished episodes not yet in the learner's buffer
        self.episodes = 0
        self._training: threading.Thread | None = None
        self.version = 0
        self.rejected: dict[str, int] = {}
        bridge = value["bridge"].strip("/")
        self._publisher = self.create_publisher(ModelUpdate, value["model_topic"], LATCHED_QOS)
        self.create_subscription(Image, f"/{bridge}/camera/image_raw", self._on_image, QOS)
        self.create_subscription(JointState, JOINT_STATES_TOPIC, self._on_joint_state, QOS)
        self.create_subscription(Float64MultiArray, f"{value['controller'].rstrip('/')}/commands", self._on_command,
                                 QOS)
        self.create_subscription(EpisodeSummary, f"/{bridge}/episode", self._on_episode, QOS)
        self.get_logger().info(f"task {self.task.name}: learning from /{bridge}/camera/image_raw, publishing "
                               f"on {value['model_topic']} after {self._min_episodes} episodes")

    def _reject(self, source: str, error: Exception) -> None:
        self.rejected[source] = self.rejected.get(source, 0) + 1
        self.get_logger().error(f"rejected {source}: {error}", throttle_duration_sec=LOG_THROTTLE)

    def _on_image(self, msg: Image) -> None:
        try:
            self.builder.add_frame(stamp_to_seconds(msg.header.stamp), image_array(msg))
        except (MessageError, ValueError) as error:
            self._reject("image", error)

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            self._assembler.add_joint_state(msg)
        except MessageError as error:
            self._reject("joint_states", error)
            return
        complete = self._assembler.complete()
        if complete is not None and np.all(np.isfinite(complete[1])):
            self.builder.add_state(*complete)

    def _on_command(self, msg: Float64MultiArray) -> None:
        command = np.asarray(msg.data, dtype=np.float64)
        if command.shape != (self.task.action_dim,) or not np.all(np.isfinite(command)):
            self._reject("command", ValueError(f"expected {self.task.action_dim} finite values, got {list(msg.data)}"))
            return
        self.builder.add_command(command)

    def _on_episode(self, msg: EpisodeSummary) -> None:
        episode = self.builder.end_episode(stamp_to_seconds(msg.header.stamp))
        if episode is None:
            return
        self._pending.append(episode)  # the training thread moves it into the buffer: no lock held here
        self.episodes += 1
        busy = self._training is not None and self._training.is_alive()
        if self.episodes >= self._min_episodes and not busy:
            self._training = threading.Thread(target=self._train_and_publish, name="planet-training")
            self._training.start()

    def _train_and_publish(self) -> None:
        try:
            while self._pending:
                self.learner.buffer.add(self._pending.pop(0))
            losses = self.learner.train(self.config.train_steps)
            payload = model_to_payload(self.learner.model)
            if self._output_dir:
                save_model(self.learner.model, self._output_dir)
        except Exception as error:  # keep the node alive whatever training does (e.g. episodes too short)
            self.get_logger().error(f"training failed: {error}", throttle_duration_sec=LOG_THROTTLE)
            return
        self.version += 1
        msg = ModelUpdate(version=self.version, kind=payload.kind, metadata_json=payload.metadata_json,
                          weights=payload.weights, sha256=payload.sha256)
        msg.header.stamp = self.get_clock().now().to_msg()
        self._publisher.publish(msg)
        self.get_logger().info(f"published model version {self.version} ({len(self.learner.buffer)} episodes, "
                               f"image loss {losses['image']:.1f}, reward loss {losses['reward']:.4f})")

    def destroy_node(self) -> None:
        if self._training is not None:
            self._training.join()  # never leave the training thread inside torch at exit
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(PlanetLearner, "planet_learner", __doc__.split("\n")[0], argv)
