"""PlaNet (Hafner et al. 2019) around the latent world model of :mod:`mbrl_ros.models.latent`.

- :mod:`~mbrl_ros.planet.planner`: CEM in latent space (:class:`LatentPlanner`) and the image-to-action loop
  (:class:`PlanetAgent`);
- :mod:`~mbrl_ros.planet.training`: pixel environments with action repeat, the episode buffer of sequence
  chunks and the offline training loop (``mbrl-ros planet``);
- :mod:`~mbrl_ros.planet.control` and :mod:`~mbrl_ros.planet.node`: the ``planet_controller`` node, driving a
  robot from its camera topic;
- :mod:`~mbrl_ros.planet.episodes` and :mod:`~mbrl_ros.planet.learner_node`: the ``planet_learner`` node,
  training the world model from camera, state and command streams;
- :mod:`~mbrl_ros.planet.tasks`: cart-pole swing-up with a camera framed for 64 x 64 frames.
"""

from mbrl_ros.planet.planner import PAPER_PLANNER, LatentPlanner, LatentPlannerConfig, PlanetAgent, scale_actions

__all__ = ["PAPER_PLANNER", "LatentPlanner", "LatentPlannerConfig", "PlanetAgent", "scale_actions"]
