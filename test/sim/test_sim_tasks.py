"""Tasks: layouts, batched rewards equal to what the simulator reports, kinematics, the hand task, the registry."""

import textwrap

import mujoco
import numpy as np
import pytest
import torch

from mbrl_ros.rotations import quaternion_angle, quaternion_multiply
from mbrl_ros.sim import Simulation
from mbrl_ros.sim.episode import TaskSimulation
from mbrl_ros.tasks import TASKS, JointPositions, JointVelocities, ShadowHandCube, make_task, task_class
from mbrl_ros.tasks.kinematics import SerialChain

from support import TORCH_DEVICES


@pytest.fixture(scope="module")
def tasks():
    return {name: make_task(name) for name in TASKS}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_describes_its_state_actions_and_timing(tasks, name):
    task = tasks[name]
    model = task.model
    assert task.state_dim == task.layout.size == len(task.layout.labels)
    low, high = task.action_bounds
    assert low.shape == high.shape == (task.action_dim,) == (model.nu,) and np.all(low < high)
    assert len(set(task.actuator_names)) == task.action_dim and all(task.actuator_names), "named, uniquely"
    assert round(task.dt / model.opt.timestep) * model.opt.timestep == pytest.approx(task.dt)
    assert task.episode_length > 0 and task.success_hold_steps >= 1
    joint_names = {model.joint(j).name for j in range(model.njnt)}
    for field in task.layout.fields:
        if isinstance(field, JointPositions | JointVelocities):
            assert set(field.joints) <= joint_names, field
    for key, body in task.bodies.items():
        assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body) >= 0, key
    assert set(task.layout.pose_bodies) | set(task.layout.twist_bodies) <= set(task.bodies)
    for body in task.goal_bodies:
        assert model.body_mocapid[model.body(body).id] >= 0, "goal markers become mocap bodies"


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("name", sorted(TASKS))
def test_batched_rewards_equal_the_rewards_the_simulator_reports(tasks, name, device):
    task = tasks[name]
    simulation = TaskSimulation(task, seed=11)
    low, high = task.action_bounds
    rng = np.random.default_rng(5)
    steps = []
    while len(steps) < 40:
        if simulation.done:
            simulation.reset()
        steps.append(simulation.step(rng.uniform(low, high) * 1.2))  # some beyond the bounds: clamped
    state, action, next_state = (torch.from_numpy(np.stack([getattr(s, f) for s in steps]))
                                 for f in ("state", "action", "next_state"))
    reported = torch.tensor([s.reward for s in steps], dtype=torch.float64)
    torch.testing.assert_close(task.reward(state, action, next_state), reported, rtol=0, atol=1e-12)
    assert task.terminated(next_state).tolist() == [s.terminated for s in steps]
    assert task.is_success(next_state).tolist() == [s.success for s in steps]
    assert np.all(np.stack([s.action for s in steps]) <= high) and np.all(np.stack([s.action for s in steps]) >= low)
    # The planners' float32 batches, on their device, give the same rewards to float32 precision.
    state32, action32, next_state32 = (t.float().to(device) for t in (state, action, next_state))
    reward32 = task.reward(state32, action32, next_state32)
    assert reward32.dtype == torch.float32 and reward32.device.type == device
    torch.testing.assert_close(reward32.double().cpu(), reported, rtol=1e-4, atol=1e-4)
    assert task.terminated(next_state32).cpu().tolist() == [s.terminated for s in steps]
    assert torch.isfinite(reported).all() and reported.std() > 0


@pytest.mark.parametrize(("name", "body", "site"), [("reacher", "fingertip", None), ("pusher", "tips_arm", None),
                                                    ("cartpole_swingup", None, "tip")])
@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_forward_kinematics_matches_mujoco(tasks, name, body, site, device):
    model = tasks[name].model
    point = (0.0, 0.0, 0.0)
    if site is not None:
        body, point = model.body(int(model.site(site).bodyid[0])).name, model.site(site).pos
    chain = SerialChain(model, body, point)
    sim = Simulation(model, dt=model.opt.timestep)
    joints = np.random.default_rng(0).uniform(-2.0, 2.0, (16, len(chain.joint_names)))
    expected = []
    for row in joints:
        sim.set_joint_positions(chain.joint_names, row)
        sim.forward()
        world = sim.data.site_xpos[model.site(site).id] if site is not None else sim.data.xpos[model.body(body).id]
        expected.append(world.copy())
    computed = chain(torch.from_numpy(joints).to(device))
    assert computed.device.type == device
    torch.testing.assert_close(computed.cpu(), torch.from_numpy(np.array(expected)), rtol=0, atol=1e-12)


def test_quaternion_angle_is_the_rotation_angle_whatever_the_sign_and_scale():
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(64, 4, generator=generator, dtype=torch.float64)
    start = start / start.norm(dim=-1, keepdim=True)
    axis = torch.randn(64, 3, generator=generator, dtype=torch.float64)
    axis = axis / axis.norm(dim=-1, keepdim=True)
    angle = torch.linspace(0.0, torch.pi, 64, dtype=torch.float64)
    turn = torch.cat([torch.cos(angle / 2)[:, None], torch.sin(angle / 2)[:, None] * axis], dim=-1)
    end = quaternion_multiply(turn, start)
    torch.testing.assert_close(quaternion_angle(start, end), angle, rtol=0, atol=1e-7)
    torch.testing.assert_close(quaternion_angle(-3.0 * start, 0.5 * end), angle, rtol=0, atol=1e-7)


def test_the_hand_goal_is_a_quarter_turn_of_the_cube_about_a_world_axis_drawn_per_episode(tasks):
    task = tasks["shadow_hand_cube"]
    goals = []
    for seed in range(4):
        state = torch.from_numpy(TaskSimulation(task, seed=seed).state())[None]
        np.testing.assert_allclose(task.orientation_error(state).item(), np.pi / 2, atol=0.05)
        goals.append(state[0, task.layout["goal_orientation"]])
    assert len({tuple(np.round(goal.numpy(), 3)) for goal in goals}) == 4
    yaw_only = TaskSimulation(ShadowHandCube(goal_axes="z"), seed=0)
    relative = _goal_turn_quaternion(yaw_only, yaw_only.state())
    np.testing.assert_allclose(np.abs(relative[1:3]), 0.0, atol=0.05)  # the turn is about z


def _goal_turn_quaternion(simulation: TaskSimulation, state: np.ndarray) -> np.ndarray:
    """(4,) the turn from the cube's orientation in ``state`` to the goal's: goal * cube^-1."""
    turn = np.zeros(4)
    cube = state[simulation.layout["object_orientation"]]
    mujoco.mju_mulQuat(turn, state[simulation.layout["goal_orientation"]], cube * [1, -1, -1, -1])
    return turn


def _goal_turns(goal_axes: str, seeds: range) -> set[str]:
    """The goals drawn on ``seeds``, each as the cube's quarter turn about a world axis, e.g. ``x+``."""
    simulation = TaskSimulation(ShadowHandCube(goal_axes=goal_axes))
    return {simulation.task.goal_turn(simulation.reset(seed)) for seed in seeds}


def test_the_goal_turn_is_named_by_its_nearest_world_axis_and_sign():
    task = ShadowHandCube()
    cube = np.array([np.cos(0.3), 0.0, 0.0, np.sin(0.3)])  # the cube yawed 0.6 rad about z
    for name, axis in (("x", [1.0, 0, 0]), ("y", [0, 1.0, 0]), ("z", [0, 0, 1.0])):
        for sign in (1, -1):
            turn = np.array([np.cos(np.pi / 4), *(sign * np.sin(np.pi / 4) * np.array(axis))])
            goal = np.zeros(4)
            mujoco.mju_mulQuat(goal, turn, cube)
            state = np.zeros(task.state_dim)
            state[task.layout["object_orientation"]], state[task.layout["goal_orientation"]] = cube, -goal
            assert task.goal_turn(state) == name + ("+" if sign > 0 else "-")


def test_signed_goal_axes_turn_the_cube_one_way_only():
    assert _goal_turns("xz", range(30)) == {"x+", "x-", "z+", "z-"}
    assert _goal_turns("x+y-", range(30)) == {"x+", "y-"}
    assert _goal_turns("z-y", range(30)) == {"z-", "y+", "y-"}
    for bad in ("", "x++", "+x", "xw", "x y", ["x"]):
        with pytest.raises(ValueError, match="goal_axes"):
            ShadowHandCube(goal_axes=bad)


def test_dropping_the_cube_is_penalised_and_ends_the_episode(tasks):
    task = tasks["shadow_hand_cube"]
    simulation = TaskSimulation(task, seed=0)
    simulation.sim.set_body_pose("object", np.array([1.3, 0.87, 0.3, 1.0, 0.0, 0.0, 0.0]))  # beside the hand
    simulation.sim.forward()
    for _ in range(20):
        step = simulation.step(simulation.hold_command())
        if step.terminated:
            break
    assert step.terminated and not step.truncated and simulation.done and simulation.summary().terminated
    next_state = torch.from_numpy(step.next_state)[None]
    expected = -task.orientation_error(next_state).item() - 20.0
    assert step.reward == pytest.approx(expected) and not step.success
    state = torch.from_numpy(step.state)[None]
    for penalty in (0.0, 140.0):
        reward = ShadowHandCube(drop_penalty=penalty).reward(state, torch.zeros(1, task.action_dim), next_state)
        assert reward.item() == pytest.approx(-task.orientation_error(next_state).item() - penalty)
    for bad in (-1.0, float("nan"), float("inf"), True, "20"):
        with pytest.raises(ValueError, match="drop_penalty"):
            ShadowHandCube(drop_penalty=bad)


def test_success_needs_the_goal_held_for_the_required_consecutive_steps():
    task = ShadowHandCube(goal_angle=0.0)  # the goal is the initial orientation: holding still succeeds
    simulation = TaskSimulation(task, seed=3)
    hold = simulation.hold_command()
    for step_number in range(1, task.success_hold_steps + 1):
        step = simulation.step(hold)
        assert step.success
        assert simulation.summary().success == (step_number == task.success_hold_steps)


def test_the_hand_control_period_keeps_the_physics_and_the_task_in_seconds():
    fine, coarse = ShadowHandCube(), ShadowHandCube(control_period=0.1)
    assert (coarse.dt, coarse.episode_length, coarse.success_hold_steps) == (0.1, 40, 4)
    assert (fine.dt, fine.episode_length, fine.success_hold_steps) == (0.04, 100, 10)
    assert ShadowHandCube(control_period=0.1, episode_length=70).episode_length == 70
    fine_simulation, coarse_simulation = TaskSimulation(fine, seed=6), TaskSimulation(coarse, seed=6)
    assert coarse_simulation.sim.frame_skip == 50
    start = fine_simulation.state()
    np.testing.assert_allclose(coarse_simulation.state(), start, atol=1e-9)  # the same reset
    command = fine_simulation.hold_command() + 0.1
    for _ in range(5):  # 0.2 s either way
        fine_simulation.step(command)
    for _ in range(2):
        coarse_simulation.step(command)
    np.testing.assert_allclose(coarse_simulation.state(), fine_simulation.state(), atol=1e-9)
    assert np.abs(fine_simulation.state() - start)[fine.layout["hand_qpos"]].max() > 0.01  # the hand moved
    for bad in (0.0, -0.1, float("nan"), True, "0.1"):
        with pytest.raises(ValueError, match="control_period"):
            ShadowHandCube(control_period=bad)


def test_tasks_are_found_by_name_or_by_import_path(tmp_path, monkeypatch):
    (tmp_path / "my_tasks.py").write_text(textwrap.dedent("""
        import torch
        from mbrl_ros.tasks import Reacher

        class StillReacher(Reacher):
            name = "still_reacher"

            def reward(self, state, action, next_state):
                return -next_state[..., self.layout["qvel"]].abs().sum(-1)

        NOT_A_TASK = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert task_class("pusher") is TASKS["pusher"]
    simulation = TaskSimulation("my_tasks:StillReacher", seed=0, episode_length=5)
    step = simulation.step(np.ones(2))
    assert simulation.task.episode_length == 5
    assert step.reward == pytest.approx(-np.abs(step.next_state[2:4]).sum())
    for reference, message in [("nope", "unknown task"), ("no_such_module_xyz:Task", "cannot import"),
                               ("my_tasks:NOT_A_TASK", "not a mbrl_ros.tasks.Task"),
                               ("my_tasks:Missing", "not a mbrl_ros.tasks.Task")]:
        with pytest.raises(ValueError, match=message):
            make_task(reference)
    with pytest.raises(ValueError, match="bad options"):
        make_task("reacher", goal_axes="x")
    with pytest.raises(ValueError, match="episode_length"):
        make_task("reacher", episode_length=0)
    with pytest.raises(ValueError, match="goal_axes"):
        make_task("shadow_hand_cube", goal_axes="w")


def test_the_cartpole_leaves_the_rail_end_collisions_out_of_its_model_training(tasks):
    task = tasks["cartpole_swingup"]
    simulation = TaskSimulation(task, seed=3)
    steps = [simulation.step(np.array([3.0])) for _ in range(60)]  # full force: the cart runs into the rail's end
    states, next_states = np.stack([s.state for s in steps]), np.stack([s.next_state for s in steps])
    learnable = task.learnable(states, next_states)
    velocity_change = np.abs(next_states[:, 2] - states[:, 2])
    hit = np.flatnonzero(velocity_change > 2.0)  # under full force alone the cart gains 12 N x 0.05 s / 0.6 kg = 1 m/s
    assert len(hit) > 0 and not learnable[hit].any(), "the stop at the rail's end is learnt"
    assert learnable[:5].all(), "transitions mid-rail are left out"
    assert task.learnable(states[:0], next_states[:0]).shape == (0,)
