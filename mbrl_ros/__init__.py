"""mbrl_ros: model-based RL and sampling-based MPC for robots, as a library and as ROS 2 nodes."""

__version__ = "0.1.0"
