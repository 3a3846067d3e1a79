"""The learning side of the loop, ROS-free: transitions from robot streams, and the learner's core."""

from mbrl_ros.learning.learner import Learner, ModelRelease, RetrainPolicy, model_factory
from mbrl_ros.learning.model_store import ModelStore
from mbrl_ros.learning.transitions import AssemblerStats, Transition, TransitionAssembler

__all__ = [
    "AssemblerStats", "Learner", "ModelRelease", "ModelStore", "RetrainPolicy", "Transition", "TransitionAssembler",
    "model_factory",
]
