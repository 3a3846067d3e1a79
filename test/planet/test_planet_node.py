"""planet_controller over real DDS: a command per camera frame, the action repeat held, bad frames and models
rejected while the node keeps running, models swapped in from the model topic, the bridge driven from its camera."""

import time

import numpy as np
import pytest
import rclpy
import torch
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray

from mbrl_ros.models import model_to_payload, save_model
from mbrl_ros.models.latent import LatentDynamicsModel
from mbrl_ros.msg import EpisodeSummary, ModelUpdate
from mbrl_ros.nodes.conversions import image_message
from mbrl_ros.nodes.mujoco_bridge import EPISODE_QOS, MujocoBridge
from mbrl_ros.planet.learner_node import PlanetLearner
from mbrl_ros.planet.node import PlanetController
from mbrl_ros.planet.tasks import PIXEL_CARTPOLE

from support import detach_node, wait_for

QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
TINY = {"depth": 4, "deterministic": 16, "stochastic": 4, "hidden": 16}


def tiny_model(action_dim: int = 1) -> LatentDynamicsModel:
    torch.manual_seed(0)
    return LatentDynamicsModel(action_dim, **TINY)


class Camera:
    """A test node that plays the bridge: publishes frames, collects the controller's commands."""

    def __init__(self, executor):
        self.node = rclpy.create_node("fake_camera", context=executor.context)
        self.images = self.node.create_publisher(Image, "/test_bridge/camera/image_raw", QOS)
        self.models = self.node.create_publisher(ModelUpdate, "/test_model", LATCHED)
        self.commands: list[np.ndarray] = []
        self.node.create_subscription(Float64MultiArray, "/forward_command_controller/commands",
                                      lambda msg: self.commands.append(np.array(msg.data)), QOS)
        executor.add_node(self.node)

    def frame(self, rgb: np.ndarray) -> Image:
        return image_message(rgb, self.node.get_clock().now().to_msg(), "camera")

    def send(self, msg: Image, expect_command: bool = True) -> None:
        before = len(self.commands)
        self.images.publish(msg)
        if expect_command:
            assert wait_for(lambda: len(self.commands) > before, timeout=10)


@pytest.fixture
def controller(ros_executor, tmp_path):
    save_model(tiny_model(), tmp_path / "model")
    overrides = [Parameter(name, value=value) for name, value in {
        "bridge": "test_bridge", "model_topic": "/test_model", "model_path": str(tmp_path / "model"),
        "action_repeat": 2, "horizon": 4, "candidates": 40, "iterations": 2, "top": 4}.items()]
    node = PlanetController(context=ros_executor.context, parameter_overrides=overrides)
    ros_executor.add_node(node)
    camera = Camera(ros_executor)
    assert wait_for(lambda: node.count_subscribers("/forward_command_controller/commands") > 0
                    and camera.images.get_subscription_count() > 0, timeout=10)
    return node, camera


def frames(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(count)]


def test_one_command_per_frame_within_the_bounds_held_over_the_action_repeat(controller):
    node, camera = controller
    for rgb in frames(6, seed=0):
        camera.send(camera.frame(rgb))
    commands = np.array(camera.commands)
    assert commands.shape == (6, 1) and np.all(np.abs(commands) <= 3.0)
    np.testing.assert_array_equal(commands[0::2], commands[1::2])  # the frame after a decision holds it
    assert node.loop.frames == 6 and not node.rejected


def test_malformed_frames_are_rejected_and_the_node_keeps_running(controller):
    node, camera = controller
    good = frames(1, seed=1)[0]
    wrong_encoding = camera.frame(good)
    wrong_encoding.encoding = "bgr8"
    wrong_size = camera.frame(good[:32, :48])
    truncated = camera.frame(good)
    truncated.data = bytes(truncated.data)[:1000]
    for msg in (wrong_encoding, wrong_size, truncated):
        camera.send(msg, expect_command=False)
    assert wait_for(lambda: node.rejected.get("image") == 3, timeout=10), node.rejected
    assert camera.commands == [] and node.loop.frames == 0
    camera.send(camera.frame(good))
    assert len(camera.commands) == 1 and node.loop.frames == 1


def test_models_from_the_topic_are_checked_and_swapped_in(controller):
    node, camera = controller
    wrong = model_to_payload(tiny_model(action_dim=2))
    camera.models.publish(ModelUpdate(version=3, kind=wrong.kind, metadata_json=wrong.metadata_json,
                                      weights=wrong.weights, sha256=wrong.sha256))
    assert wait_for(lambda: node.rejected.get("model_update") == 1, timeout=10), node.rejected
    assert node.model_version == 0
    right = model_to_payload(tiny_model())
    camera.models.publish(ModelUpdate(version=4, kind=right.kind, metadata_json=right.metadata_json,
                                      weights=right.weights, sha256="0" * 64))  # corrupted: bad digest
    assert wait_for(lambda: node.rejected.get("model_update") == 2, timeout=10)
    camera.models.publish(ModelUpdate(version=5, kind=right.kind, metadata_json=right.metadata_json,
                                      weights=right.weights, sha256=right.sha256))
    assert wait_for(lambda: node.model_version == 5, timeout=10)
    time.sleep(0.1)
    camera.send(camera.frame(frames(1, seed=2)[0]))
    assert len(camera.commands) == 1


def test_the_controller_drives_the_lockstep_bridge_from_its_camera(ros_executor, tmp_path):
    save_model(tiny_model(), tmp_path / "model")
    bridge = MujocoBridge(context=ros_executor.context, parameter_overrides=[
        Parameter("task", value=PIXEL_CARTPOLE), Parameter("mode", value="lockstep"),
        Parameter("episode_length", value=12), Parameter("camera_enabled", value=True),
        Parameter("lockstep_timeout", value=0.0)])
    controller = PlanetController(context=ros_executor.context, parameter_overrides=[
        Parameter(name, value=value) for name, value in {
            "model_path": str(tmp_path / "model"), "model_topic": "/test_model", "action_repeat": 3, "horizon": 4,
            "candidates": 40, "iterations": 2, "top": 4}.items()])
    episodes: list[EpisodeSummary] = []
    listener = rclpy.create_node("episode_listener", context=ros_executor.context)
    listener.create_subscription(EpisodeSummary, "/mujoco_bridge/episode", episodes.append, EPISODE_QOS)
    try:
        for node in (listener, controller, bridge):
            ros_executor.add_node(node)
        assert wait_for(lambda: len(episodes) >= 2, timeout=60), (controller.commands_sent, controller.rejected)
        assert [episode.length for episode in episodes[:2]] == [12, 12]
        assert controller.commands_sent >= 24 and not controller.rejected
    finally:
        detach_node(ros_executor, bridge)


def test_the_learner_trains_from_the_streams_and_the_controller_takes_its_model(ros_executor):
    bridge = MujocoBridge(context=ros_executor.context, parameter_overrides=[
        Parameter("task", value=PIXEL_CARTPOLE), Parameter("mode", value="lockstep"),
        Parameter("episode_length", value=8), Parameter("camera_enabled", value=True),
        Parameter("lockstep_timeout", value=0.0)])
    controller = PlanetController(context=ros_executor.context, parameter_overrides=[
        Parameter(name, value=value) for name, value in {
            "model_topic": "/test_model", "action_repeat": 2, "horizon": 3, "candidates": 20, "iterations": 2,
            "top": 4}.items()])
    learner = PlanetLearner(context=ros_executor.context, parameter_overrides=[
        Parameter(name, value=value) for name, value in {
            "model_topic": "/test_model", "action_repeat": 2, "min_episodes": 1, "train_steps": 2, "batch_size": 2,
            "chunk_length": 4, "depth": 4, "deterministic": 16, "stochastic": 4, "hidden": 16}.items()])
    try:
        for node in (learner, controller, bridge):
            ros_executor.add_node(node)
        assert wait_for(lambda: controller.model_version >= 1, timeout=60), (learner.episodes, learner.rejected)
        episode = learner.learner.buffer.episodes[0]
        assert len(episode.frames) == 5 and np.all(np.abs(episode.actions) <= 1.0)  # 8 steps / 2 + the first
        assert not learner.rejected and not controller.rejected
        sent = controller.commands_sent
        assert wait_for(lambda: controller.commands_sent > sent + 4, timeout=30)  # it goes on planning
    finally:
        detach_node(ros_executor, bridge)
