"""Offline learning: dynamics models trained from recorded rosbag2 bags, their evaluation and their reports.

- :func:`transitions_from_bag`: a bag's messages through the live learner's code path
  (:class:`~mbrl_ros.nodes.robot_streams.RobotStreams`), with every rejected message counted per topic;
- :func:`train_from_bag`: ``mbrl-ros train --bag PATH --config CONFIG``, writing a learner data directory
  (the dynamics learner and the controller start from it) and an evaluation report;
- :func:`load_model_directory`: the newest model of such a directory (or of a single model directory).
"""

from mbrl_ros.offline.bag_transitions import BagTransitions, OfflineDataError, transitions_from_bag
from mbrl_ros.offline.config import LearnerSettings, learner_settings
from mbrl_ros.offline.evaluation import OneStepErrors, OpenLoopErrors, one_step_errors, open_loop_errors
from mbrl_ros.offline.model_dir import load_model_directory
from mbrl_ros.offline.training import OfflineResult, train_from_bag

__all__ = [
    "BagTransitions",
    "LearnerSettings",
    "OfflineDataError",
    "OfflineResult",
    "OneStepErrors",
    "OpenLoopErrors",
    "learner_settings",
    "load_model_directory",
    "one_step_errors",
    "open_loop_errors",
    "train_from_bag",
    "transitions_from_bag",
]
