"""The ROS-free sim layer: MJCF references, stepping at a control period, named state, seeded episodes."""

import mujoco
import numpy as np
import pytest

from mbrl_ros.sim import Simulation, load_model, resolve_mjcf
from mbrl_ros.sim.episode import TaskSimulation
from mbrl_ros.tasks import make_task
from mbrl_ros.tasks.shadow_hand_cube import HAND_JOINTS

HAND_MJCF = "gymnasium_robotics:envs/assets/hand/manipulate_block.xml"


def test_package_references_resolve_to_the_files_pip_packages_ship(tmp_path):
    hand = resolve_mjcf(HAND_MJCF)
    assert hand.name == "manipulate_block.xml" and "gymnasium_robotics" in hand.parts
    assert resolve_mjcf("gymnasium:envs/mujoco/assets/half_cheetah.xml").is_file()
    assert resolve_mjcf("mbrl_ros:sim/assets/cartpole.xml").is_file()
    own = tmp_path / "model.xml"
    own.write_text("<mujoco/>")
    assert resolve_mjcf(own) == own and resolve_mjcf(str(own)) == own


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("no_such_package_xyz:model.xml", "not installed"),
        ("gymnasium:envs/mujoco/assets/missing.xml", "no file"),
        ("/nonexistent/model.xml", "no such file"),
    ],
)
def test_missing_models_are_reported_with_where_they_were_looked_for(reference, message):
    with pytest.raises(FileNotFoundError, match=message):
        resolve_mjcf(reference)


def test_the_shadow_hand_loads_with_its_24_joints_20_position_actuators_and_a_free_cube():
    sim = Simulation.from_mjcf(HAND_MJCF, dt=0.04)
    assert sim.frame_skip == 20
    assert set(HAND_JOINTS) <= set(sim.joint_names) and len(sim.joint_names) == 24
    assert len(sim.actuator_names) == 20 and sim.position_actuators.all()
    assert sim.body_pose("object").shape == (7,)


def test_a_control_period_must_be_a_whole_number_of_physics_steps():
    model = load_model("mbrl_ros:sim/assets/cartpole.xml")
    with pytest.raises(ValueError, match="whole multiple"):
        Simulation(model, dt=0.015)
    with pytest.raises(ValueError, match="whole multiple"):
        Simulation(model, dt=0.0)
    sim = Simulation(model, dt=0.05)
    sim.step(np.zeros(1))
    assert sim.time == pytest.approx(0.05)


def test_actions_are_clamped_to_the_actuator_ranges_and_must_be_finite():
    sim = Simulation.from_mjcf("mbrl_ros:sim/assets/cartpole.xml", dt=0.05)
    assert sim.step(np.array([100.0])).tolist() == [3.0]
    assert sim.data.ctrl.tolist() == [3.0]
    with pytest.raises(ValueError, match="finite"):
        sim.step(np.array([np.nan]))
    with pytest.raises(ValueError, match="expected 1"):
        sim.step(np.zeros(2))


def test_holding_the_posture_keeps_the_hand_where_it_is():
    sim = Simulation.from_mjcf(HAND_MJCF, dt=0.04)
    rng = np.random.default_rng(0)
    target = rng.uniform(sim.ctrl_low, sim.ctrl_high)
    for _ in range(25):
        sim.step(target)
    posture = sim.joint_positions(HAND_JOINTS)
    hold = sim.hold_command()
    for _ in range(10):
        sim.step(hold)
    # Position servos sag a little under gravity (the wrist's kp is 5 N m/rad) ...
    assert np.abs(sim.joint_positions(HAND_JOINTS) - posture).max() < 0.12
    # ... whereas another command (the reference posture) moves the hand far away.
    for _ in range(10):
        sim.step(np.clip(np.zeros(20), sim.ctrl_low, sim.ctrl_high))
    assert np.abs(sim.joint_positions(HAND_JOINTS) - posture).max() > 0.8


def test_body_twist_is_the_rate_of_change_of_the_body_pose():
    sim = Simulation.from_mjcf(HAND_MJCF, dt=0.002)  # one physics step per control period
    sim.set_body_pose("object", np.array([1.0, 0.7, 0.4, 1.0, 0.0, 0.0, 0.0]))  # in the air, clear of the hand
    sim.set_body_twist("object", np.array([0.1, -0.2, 0.3, 2.0, -1.0, 0.5]))
    sim.forward()
    np.testing.assert_allclose(sim.body_twist("object"), [0.1, -0.2, 0.3, 2.0, -1.0, 0.5], atol=1e-12)
    for _ in range(3):
        before = sim.body_pose("object")
        sim.step(sim.hold_command())
        after, twist = sim.body_pose("object"), sim.body_twist("object")
        # Semi-implicit Euler moves the pose with the new velocity: x' = x + v' dt, q' = exp(w' dt / 2) q.
        np.testing.assert_allclose((after[:3] - before[:3]) / 0.002, twist[:3], atol=1e-9)
        half_angle = np.linalg.norm(twist[3:]) * 0.002 / 2
        turn = np.array([np.cos(half_angle), *np.sin(half_angle) * twist[3:] / np.linalg.norm(twist[3:])])
        expected = np.zeros(4)
        mujoco.mju_mulQuat(expected, turn, before[3:])
        np.testing.assert_allclose(after[3:], expected, atol=1e-9)


def test_state_save_and_restore_reproduces_the_future_exactly():
    sim = Simulation.from_mjcf(HAND_MJCF, dt=0.04)
    actions = np.random.default_rng(1).uniform(sim.ctrl_low, sim.ctrl_high, (5, 20))

    def rollout() -> np.ndarray:
        poses = []
        for action in actions:
            sim.step(action)
            poses.append(np.concatenate([sim.body_pose("object"), sim.joint_positions(HAND_JOINTS)]))
        return np.array(poses)

    sim.step(actions[0])
    saved = sim.get_state()
    first = rollout()
    sim.set_state(saved)
    np.testing.assert_array_equal(rollout(), first)


@pytest.mark.parametrize("task", ["shadow_hand_cube", "cartpole_swingup"])
def test_same_seed_and_same_actions_give_identical_trajectories(task):
    runs = []
    for _ in range(2):
        simulation = TaskSimulation(task, seed=7)
        low, high = simulation.task.action_bounds
        rng = np.random.default_rng(3)
        states = [simulation.state()]
        for _ in range(15):
            states.append(simulation.step(rng.uniform(low, high)).next_state)
        runs.append(np.array(states))
    np.testing.assert_array_equal(runs[0], runs[1])
    other = TaskSimulation(task, seed=8)
    assert not np.array_equal(other.state(), runs[0][0]), "another seed should give another initial state"


def test_episodes_reseed_from_the_base_seed_and_end_at_their_length():
    simulation = TaskSimulation("reacher", seed=100, episode_length=3)
    first = simulation.state()
    for _ in range(3):
        step = simulation.step(np.zeros(2))
    assert step.truncated and not step.terminated and simulation.done
    with pytest.raises(RuntimeError, match="reset"):
        simulation.step(np.zeros(2))
    second = simulation.reset()
    assert (simulation.episode, simulation.seed) == (1, 101)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(TaskSimulation("reacher", seed=101).state(), second)
    np.testing.assert_array_equal(simulation.reset(seed=100), first)


def test_the_hand_task_keeps_the_cube_on_the_palm_at_reset():
    task = make_task("shadow_hand_cube")
    for seed in range(3):
        simulation = TaskSimulation(task, seed=seed)
        state = simulation.state()
        position = state[task.layout["object_position"]]
        assert 0.15 < position[2] < 0.19, position
        assert np.abs(state[task.layout["object_linear_velocity"]]).max() < 0.1
        np.testing.assert_allclose(np.linalg.norm(state[task.layout["goal_orientation"]]), 1.0)
