"""planet_controller: drives a robot from its camera with a PlaNet model (latent filtering and latent planning).

Subscribes ``image_topic`` (sensor_msgs/Image, rgb8, 64 x 64; the bridge's ``~/camera/image_raw`` by
default) and publishes ``<controller>/commands`` (std_msgs/Float64MultiArray) once per frame: every
``action_repeat``-th frame is filtered into the latent state and planned for, the frames between hold the
command (see :class:`~mbrl_ros.planet.control.PlanetControlLoop`). One command per frame suits a lockstep
bridge (one step per command) as well as a realtime one. Planning runs in the image callback, so the node
answers each frame before it reads the next (the lockstep behaviour of ``mpc_controller``).

The model ("rssm" kind) comes from ``model_path`` (a directory written by ``mbrl-ros planet``) and/or from
``model_topic`` (mbrl_ros/ModelUpdate, transient local); until one arrives the node explores with smoothed
random commands. Malformed frames (wrong encoding, size or truncated data) and unusable models are rejected
with a log line and counted; the node keeps running. Every command passes the safety filter (bounds, optional
rate limit). ``/<bridge>/episode`` restarts the latent state.
"""

from typing import Any

import torch
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray

from mbrl_ros.control import CommandLimits, SafetyFilter
from mbrl_ros.control.exploration import SmoothedRandomActions
from mbrl_ros.models import ModelPayload, load_model, model_from_payload
from mbrl_ros.models.latent import LatentDynamicsModel
from mbrl_ros.msg import EpisodeSummary, ModelUpdate
from mbrl_ros.nodes.conversions import MessageError, command_message, image_array
from mbrl_ros.nodes.parameters import declare_defaults
from mbrl_ros.nodes.spinning import run_node
from mbrl_ros.planet.control import PlanetControlLoop
from mbrl_ros.planet.planner import LatentPlannerConfig
from mbrl_ros.planet.tasks import PIXEL_CARTPOLE
from mbrl_ros.tasks import make_task

QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
LOG_THROTTLE = 1.0  # s between repeated errors of one kind

PARAMETERS: dict[str, tuple[Any, str]] = {
    "task": (PIXEL_CARTPOLE, "task name or package.module:Class: action bounds and the camera"),
    "controller": ("forward_command_controller", "commands go to <controller>/commands"),
    "bridge": ("mujoco_bridge", "node whose ~/camera/image_raw and ~/episode are read"),
    "image_topic": ("", "camera topic; empty: /<bridge>/camera/image_raw"),
    "model_topic": ("/model_update", "ModelUpdate topic (kind rssm)"),
    "model_path": ("", "directory of a saved rssm model to start with (mbrl-ros planet's OUTPUT/model)"),
    "action_repeat": (2, "frames per decision, as in training"),
    "horizon": (12, "planning horizon (decisions)"),
    "candidates": (1000, "CEM candidates per iteration"),
    "iterations": (10, "CEM iterations"),
    "top": (100, "CEM elites"),
    "max_command_step": (0.0, "largest change of a command between two frames (command units); 0: no limit"),
    "exploration_beta": (0.3, "smoothing of the random commands before any model (1: white)"),
    "planner_threads": (1, "torch threads of the planner"),
    "seed": (0, "seed of the planner and the exploration"),
}


class PlanetController(Node):
    """The node; see the module docstring. Raises ValueError for unusable parameters or ``model_path``."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("planet_controller", automatically_declare_parameters_from_overrides=True, **node_options)
        value = declare_defaults(self, PARAMETERS)
        self.task = make_task(value["task"])
        torch.set_num_threads(int(value["planner_threads"]))
        self._lower, self._upper = self.task.action_bounds
        max_step = float(value["max_command_step"])
        self._safety = SafetyFilter(CommandLimits(self._lower, self._upper, max_step if max_step > 0 else None),
                                    (self._lower + self._upper) / 2.0)
        self._explore = SmoothedRandomActions(self._lower, self._upper, value["exploration_beta"], value["seed"])
        self._action_repeat, self._seed = int(value["action_repeat"]), int(value["seed"])
        if self._action_repeat < 1:
            raise ValueError(f"parameter action_repeat must be a positive integer, got {self._action_repeat}")
        self._planner = LatentPlannerConfig(horizon=value["horizon"], candidates=value["candidates"],
                                            iterations=value["iterations"], top=value["top"])
        self.loop: PlanetControlLoop | None = None
        self.model_version = 0
        self.rejected: dict[str, int] = {}
        self.commands_sent = 0
        if value["model_path"]:
            model = load_model(value["model_path"], expected_kind="rssm")
            self._use_model(model, version=0)
        bridge = value["bridge"].strip("/")
        image_topic = value["image_topic"] or f"/{bridge}/camera/image_raw"
        self._commands = self.create_publisher(Float64MultiArray, f"{value['controller'].rstrip('/')}/commands", QOS)
        self.create_subscription(Image, image_topic, self._on_image, QOS)
        self.create_subscription(EpisodeSummary, f"/{bridge}/episode", self._on_episode_end, QOS)
        self.create_subscription(ModelUpdate, value["model_topic"], self._on_model_update, LATCHED_QOS)
        self.get_logger().info(f"task {self.task.name}: frames from {image_topic}, action repeat "
                               f"{self._action_repeat}, CEM {self._planner}; "
                               + ("planning" if self.loop else f"exploring until a model arrives on "
                                                               f"{value['model_topic']}"))

    def _reject(self, source: str, error: Exception) -> None:
        self.rejected[source] = self.rejected.get(source, 0) + 1
        self.get_logger().error(f"rejected {source}: {error}", throttle_duration_sec=LOG_THROTTLE)

    def _on_image(self, msg: Image) -> None:
        try:
            rgb = image_array(msg)
            if self.loop is None:
                command = self._explore()
            else:
                command = self.loop.step(rgb, self._safety.previous)
        except (MessageError, ValueError) as error:
            self._reject("image", error)
            return
        safe = self._safety(command).command
        self._commands.publish(command_message(safe))
        self.commands_sent += 1

    def _on_episode_end(self, msg: EpisodeSummary) -> None:
        if self.loop is not None:
            self.loop.reset()

    def _on_model_update(self, msg: ModelUpdate) -> None:
        try:
            model = model_from_payload(ModelPayload(msg.kind, msg.metadata_json, bytes(msg.weights), msg.sha256),
                                       expected_kind="rssm")
            self._use_model(model, int(msg.version))
        except ValueError as error:
            self._reject("model_update", error)
            return
        self.get_logger().info(f"planning with model version {msg.version}")

    def _use_model(self, model: LatentDynamicsModel, version: int) -> None:
        if self.loop is None:
            self.loop = PlanetControlLoop(model, self._lower, self._upper, self._action_repeat, self._planner,
                                          self._seed)
        else:
            self.loop.set_model(model)
        self.model_version = version


def main(argv: list[str] | None = None) -> int:
    return run_node(PlanetController, "planet_controller", __doc__.split("\n")[0], argv)
