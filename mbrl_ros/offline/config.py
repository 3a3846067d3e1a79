"""The dynamics learner's settings read from a parameter file (``ros__parameters`` form), without ROS.

The same file configures the live learner (``--params-file``) and offline training, so both build the same
transitions and the same model: the ``/**`` section and the ``dynamics_learner`` section are merged (the
node's own wins), nested mappings are the node's parameter sections (``model``, ``trainer``).
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbrl_ros.learning import model_factory
from mbrl_ros.models import LearnedDynamicsModel, TrainerConfig
from mbrl_ros.parameter_files import node_parameters, node_task, read_parameter_file
from mbrl_ros.settings import dataclass_from_dict
from mbrl_ros.tasks import Task

LEARNER_NODE = "dynamics_learner"
CONTROLLER_NODE = "mpc_controller"


@dataclass(frozen=True)
class LearnerSettings:
    """What the learner of a parameter file learns, and from which topics.

    Attributes:
        task: the task (state layout, control period).
        robots: the robots' namespaces ("" is the root).
        bridge: node whose ``~/<body>_pose``, ``~/<body>_twist`` and ``~/episode`` topics are read.
        controller: commands are read from ``<controller>/commands``.
        tolerance: allowed deviation of the state spacing from the control period (fraction).
        use_sim_time: the learner's clock is ``/clock`` (stamps commands with simulated time).
        model: the ``model`` section (``kind`` and the architecture).
        trainer: the ``trainer`` section.
        planning_horizon: the controller's ``mpc.horizon`` if the file gives one (steps), else None.
    """

    task: Task
    robots: tuple[str, ...]
    bridge: str
    controller: str
    tolerance: float
    use_sim_time: bool
    model: dict[str, Any]
    trainer: TrainerConfig
    planning_horizon: int | None

    def model_factory(self):
        """A function building a fresh, untrained model of the configured kind (validated now)."""
        return model_factory(self.task, self.model)

    def new_model(self) -> LearnedDynamicsModel:
        return self.model_factory()()


def learner_settings(path: str | os.PathLike) -> LearnerSettings:
    """Reads and validates the learner's settings from the parameter file at ``path``.

    Raises:
        ValueError: an unreadable file or unusable settings, naming the file and the setting.
    """
    from mbrl_ros.nodes.dynamics_learner import PARAMETERS

    path = Path(path)
    config = read_parameter_file(path)
    try:
        learner = {name: default for name, (default, _) in PARAMETERS.items()} | node_parameters(config, LEARNER_NODE)
        controller = node_parameters(config, CONTROLLER_NODE)
        task = node_task(learner)
        robots = learner["robots"]
        if isinstance(robots, str) or not all(isinstance(robot, str) for robot in robots):
            raise ValueError(f"robots must be a list of namespaces, got {robots!r}")
        trainer = dataclass_from_dict(TrainerConfig, dict(learner.get("trainer") or {}), "trainer")
        horizon = (controller.get("mpc") or {}).get("horizon")
        settings = LearnerSettings(
            task=task, robots=tuple(robots), bridge=str(learner["bridge"]), controller=str(learner["controller"]),
            tolerance=float(learner["transition_tolerance"]), use_sim_time=bool(learner.get("use_sim_time", False)),
            model=dict(learner.get("model") or {}), trainer=trainer,
            planning_horizon=None if horizon is None else int(horizon),
        )
        settings.model_factory()  # bad model settings fail here, with the file named
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from error
    return settings
