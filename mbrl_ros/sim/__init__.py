"""ROS-free MuJoCo simulation: load an MJCF, step at a control period, read named state, render headless.

Importing this package chooses a headless OpenGL backend for MuJoCo (:mod:`mbrl_ros.sim.headless`) before
``mujoco`` is imported; import it (or :mod:`mbrl_ros.tasks`) before importing ``mujoco`` yourself.

- :class:`Simulation`: one MuJoCo world stepped one control period at a time.
- :class:`mbrl_ros.sim.episode.TaskSimulation`: a task's episodes on a simulation (reward, success, seeds).
- :mod:`mbrl_ros.sim.gym_env`: the tasks as registered Gymnasium environments.
"""

from mbrl_ros.sim.headless import configure as _configure_headless_gl

_configure_headless_gl()

from mbrl_ros.sim.assets import resolve_mjcf  # noqa: E402
from mbrl_ros.sim.rendering import OffscreenRenderer  # noqa: E402
from mbrl_ros.sim.simulation import Simulation, load_model  # noqa: E402

__all__ = ["OffscreenRenderer", "Simulation", "load_model", "resolve_mjcf"]
