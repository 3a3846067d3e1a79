"""Learned dynamics models: deterministic MLP (Nagabandi et al. 2017), probabilistic ensemble (PETS), their
training and their safe serialization."""

from mbrl_ros.models.base import DynamicsModel, LearnedDynamicsModel
from mbrl_ros.models.ensemble import EnsembleLinear, ProbabilisticEnsemble
from mbrl_ros.models.layers import ACTIVATIONS, EnsembleMLP
from mbrl_ros.models.mlp import DeterministicMLP
from mbrl_ros.models.normalizer import Normalizer
from mbrl_ros.models.registry import model_class, register_model_kind, registered_kinds
from mbrl_ros.models.serialization import (
    ModelFormatError,
    ModelPayload,
    load_model,
    model_from_payload,
    model_to_payload,
    save_model,
)
from mbrl_ros.models.trainer import EpochReport, ModelTrainer, TrainerConfig, TrainingResult, plot_training_curves

__all__ = [
    "ACTIVATIONS",
    "DeterministicMLP",
    "DynamicsModel",
    "EnsembleLinear",
    "EnsembleMLP",
    "EpochReport",
    "LearnedDynamicsModel",
    "ModelFormatError",
    "ModelPayload",
    "ModelTrainer",
    "Normalizer",
    "ProbabilisticEnsemble",
    "TrainerConfig",
    "TrainingResult",
    "load_model",
    "model_class",
    "model_from_payload",
    "model_to_payload",
    "plot_training_curves",
    "register_model_kind",
    "registered_kinds",
    "save_model",
]
