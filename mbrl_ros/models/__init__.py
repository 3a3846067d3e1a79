"""Learned dynamics models: deterministic MLP (Nagabandi et al. 2017), probabilistic ensemble (PETS)."""

from mbrl_ros.models.base import DynamicsModel
from mbrl_ros.models.ensemble import EnsembleLinear, ProbabilisticEnsemble
from mbrl_ros.models.normalizer import Normalizer

__all__ = ["DynamicsModel", "EnsembleLinear", "Normalizer", "ProbabilisticEnsemble"]
