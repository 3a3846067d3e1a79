"""The learning side of the loop, ROS-free: transitions from robot streams, and the learner's core."""

from mbrl_ros.learning.transitions import AssemblerStats, Transition, TransitionAssembler

__all__ = ["AssemblerStats", "Transition", "TransitionAssembler"]
