"""Gymnasium environments (check_env, same physics and rewards as the sim layer) and headless rendering."""

import os
import sys
import threading
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mbrl_ros.sim import OffscreenRenderer
from mbrl_ros.sim.episode import TaskSimulation
from mbrl_ros.sim.gym_env import ENV_IDS, GENERIC_ENV_ID
from mbrl_ros.sim.headless import choose_backend


@pytest.mark.parametrize("env_id", sorted(ENV_IDS.values()))
def test_every_registered_environment_passes_gymnasiums_checker(env_id):
    env = gymnasium.make(env_id, render_mode="rgb_array")
    with warnings.catch_warnings():
        # Advice, not errors: the spaces keep the actuators' physical units and unbounded states.
        warnings.filterwarnings("ignore", message=".*(symmetric and normalized|infinity).*")
        check_env(env.unwrapped)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    env.close()


@pytest.mark.parametrize("task", ["shadow_hand_cube", "pusher"])
def test_environments_step_the_same_physics_and_rewards_as_the_sim_layer(task):
    env = gymnasium.make(ENV_IDS[task])
    observation, info = env.reset(seed=42)
    simulation = TaskSimulation(task)
    np.testing.assert_array_equal(simulation.reset(info["seed"]), observation)
    rng = np.random.default_rng(0)
    for _ in range(10):
        action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
        observation, reward, terminated, truncated, info = env.step(action)
        step = simulation.step(action.astype(np.float64))
        np.testing.assert_array_equal(observation, step.next_state)
        assert (reward, terminated, truncated, info["success"]) == (step.reward, step.terminated, step.truncated,
                                                                     step.success)
    env.close()


def test_any_task_and_its_options_through_the_generic_environment():
    env = gymnasium.make(f"mbrl_ros.sim.gym_env:{GENERIC_ENV_ID}", task="mbrl_ros.tasks:Reacher", episode_length=2)
    env.reset(seed=0)
    assert env.step(np.zeros(2, np.float32))[3] is False
    assert env.step(np.zeros(2, np.float32))[3] is True
    env.close()


def test_rendering_is_deterministic_for_equal_states_and_differs_for_different_ones():
    first, second = TaskSimulation("shadow_hand_cube", seed=1), TaskSimulation("shadow_hand_cube", seed=1)
    for _ in range(3):
        first.step(first.hold_command())
        second.step(second.hold_command())
    image = first.render(64, 64)
    np.testing.assert_array_equal(image, second.render(64, 64))
    np.testing.assert_array_equal(image, first.render(64, 64))
    assert image.std() > 10, "the frame should show a scene, not a blank"
    first.step(np.clip(np.ones(20), *first.task.action_bounds))
    assert np.abs(first.render(64, 64).astype(int) - image).sum() > 1000
    first.close()
    second.close()


def test_a_renderer_can_be_driven_from_any_thread():
    simulation = TaskSimulation("cartpole_swingup", seed=0)
    with OffscreenRenderer(simulation.sim.model, 32, 24) as renderer:
        frames = [renderer.render(simulation.sim.data, "side")]
        worker = threading.Thread(target=lambda: frames.append(renderer.render(simulation.sim.data, "side")))
        worker.start()
        worker.join()
    assert frames[0].shape == (24, 32, 3)
    np.testing.assert_array_equal(frames[0], frames[1])
    with pytest.raises(RuntimeError, match="close"):
        renderer.render(simulation.sim.data)
    with pytest.raises(ValueError, match="positive"):
        OffscreenRenderer(simulation.sim.model, 0, 64)
    with pytest.raises(ValueError, match="framebuffer"):
        OffscreenRenderer(simulation.sim.model, 4096, 64)


def test_the_headless_backend_is_chosen_from_what_is_installed():
    def libraries(*present):
        return lambda name: f"lib{name}.so" if name in present else None

    assert choose_backend({"MUJOCO_GL": "glfw"}, libraries("EGL")) == "glfw"
    assert choose_backend({"DISPLAY": ":0"}, libraries("EGL")) is None
    assert choose_backend({}, libraries("EGL")) == "egl"
    assert choose_backend({}, libraries("EGL", "OSMesa")) == "osmesa"
    assert choose_backend({}, libraries()) is None


def test_choosing_a_backend_after_mujoco_was_imported_warns(monkeypatch):
    from mbrl_ros.sim import headless

    for name in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY"):
        monkeypatch.setenv(name, "")  # records the value to restore, also when there is none
        monkeypatch.delenv(name)
    monkeypatch.setattr(headless.ctypes.util, "find_library", lambda name: "libEGL.so" if name == "EGL" else None)
    with pytest.warns(RuntimeWarning, match="mujoco was imported before mbrl_ros.sim chose the egl OpenGL backend"):
        assert headless.configure() == "egl"  # this process imported mujoco long ago
    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.delitem(sys.modules, "mujoco")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert headless.configure() == "egl" and os.environ["MUJOCO_GL"] == "egl"


def test_setup_installs_osmesa_only_when_nothing_renders(monkeypatch, capsys):
    from mbrl_ros.sim import headless

    outcomes, installs = [], []
    monkeypatch.setattr(headless, "probe", lambda: outcomes.pop(0))
    monkeypatch.setattr(headless, "install_osmesa", lambda: installs.append(1) or (True, "installed"))
    monkeypatch.setattr(headless.ctypes.util, "find_library", lambda name: None)

    outcomes[:] = [(True, "MUJOCO_GL=egl: ")]
    assert headless.main(["--install"]) == 0 and not installs
    outcomes[:] = [(False, "MUJOCO_GL=egl: no device"), (True, "MUJOCO_GL=osmesa: ")]
    assert headless.main(["--install"]) == 0 and installs == [1]
    assert "works (MUJOCO_GL=osmesa)" in capsys.readouterr().out
    outcomes[:] = [(False, "MUJOCO_GL=egl: no device")]
    assert headless.main([]) == 1, "without --install it only reports"
    assert "does not work" in capsys.readouterr().err
    monkeypatch.setattr(headless, "install_osmesa", lambda: (False, "not root and sudo is not available"))
    outcomes[:] = [(False, "MUJOCO_GL=egl: no device")]
    assert headless.main(["--install"]) == 1
    assert "could not be installed: not root" in capsys.readouterr().err


def test_the_backend_chosen_here_renders_in_a_fresh_interpreter():
    from mbrl_ros.sim import headless

    works, detail = headless.probe()
    assert works, detail
