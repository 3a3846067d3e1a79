"""A task's state assembled from the robot's topics: all parts of one stamp, each state once."""

import numpy as np
import pytest

from mbrl_ros.nodes.conversions import (
    MessageError,
    joint_state_message,
    pose_stamped_message,
    seconds_to_stamp,
    twist_stamped_message,
)
from mbrl_ros.nodes.state_assembly import TopicStateAssembler, pose_topic, twist_topic
from mbrl_ros.sim.episode import TaskSimulation


def _publish(simulation: TaskSimulation, assembler: TopicStateAssembler, seconds: float, skip: str = "") -> None:
    """Feeds the assembler what the bridge publishes for the simulation's current state."""
    stamp = seconds_to_stamp(seconds)
    names = simulation.sim.joint_names
    for body in simulation.task.bodies:
        if body in assembler.layout.pose_bodies and body != skip:
            assembler.add_pose(body, pose_stamped_message(simulation.body_pose(body), stamp, "world"))
    for body in assembler.layout.twist_bodies:
        assembler.add_twist(body, twist_stamped_message(simulation.body_twist(body), stamp, "world"))
    assembler.add_joint_state(joint_state_message(
        names, simulation.joint_positions(names), simulation.joint_velocities(names), np.zeros(len(names)), stamp))


def test_the_state_from_the_topics_is_the_simulators_state():
    simulation = TaskSimulation("shadow_hand_cube", seed=2)
    assembler = TopicStateAssembler(simulation.layout)
    assert assembler.complete() is None
    _publish(simulation, assembler, 0.0)
    stamp, state = assembler.complete()
    assert stamp == 0.0
    np.testing.assert_allclose(state, simulation.state(), rtol=0, atol=1e-15)
    assert assembler.complete() is None, "each state is given once"
    assert assembler.complete(only_new=False)[0] == 0.0


def test_a_state_is_complete_only_when_every_part_of_its_stamp_arrived():
    simulation = TaskSimulation("shadow_hand_cube", seed=2)
    assembler = TopicStateAssembler(simulation.layout)
    _publish(simulation, assembler, 0.0)
    assembler.complete()
    simulation.step(simulation.hold_command())
    _publish(simulation, assembler, 0.04, skip="goal")  # the goal pose of the new step is late
    assert assembler.complete() is None
    assembler.add_pose("goal", pose_stamped_message(simulation.body_pose("goal"), seconds_to_stamp(0.04), "world"))
    stamp, state = assembler.complete()
    assert stamp == pytest.approx(0.04)
    np.testing.assert_allclose(state, simulation.state(), rtol=0, atol=1e-15)
    tolerant = TopicStateAssembler(simulation.layout, max_skew=0.05)
    _publish(simulation, tolerant, 0.04)
    tolerant.add_pose("goal", pose_stamped_message(simulation.body_pose("goal"), seconds_to_stamp(0.0), "world"))
    assert tolerant.complete() is not None


def test_unusable_parts_are_refused_and_the_previous_ones_kept():
    simulation = TaskSimulation("reacher", seed=0)
    assembler = TopicStateAssembler(simulation.layout)
    _publish(simulation, assembler, 1.0)
    bad = joint_state_message(["joint0"], [np.nan], [0.0], [0.0], seconds_to_stamp(2.0))
    with pytest.raises(MessageError):
        assembler.add_joint_state(bad)
    np.testing.assert_allclose(assembler.complete()[1], simulation.state(), rtol=0, atol=1e-15)
    assert pose_topic("goal") == "/mujoco_bridge/goal_pose"
    assert twist_topic("object", "/hand_1/") == "/hand_1/object_twist"
