"""PlaNet (Hafner et al. 2019) around the latent world model of :mod:`mbrl_ros.models.latent`.

- :mod:`~mbrl_ros.planet.planner`: CEM in latent space (:class:`LatentPlanner`) and the image-to-action loop
  (:class:`PlanetAgent`);
- :mod:`~mbrl_ros.planet.training`: pixel environments with action repeat, the episode buffer of sequence
  chunks and the offline training loop (``mbrl-ros planet``).
"""

from mbrl_ros.planet.planner import LatentPlanner, LatentPlannerConfig, PlanetAgent, scale_actions

__all__ = ["LatentPlanner", "LatentPlannerConfig", "PlanetAgent", "scale_actions"]
