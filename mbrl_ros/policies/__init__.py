"""Policy networks: imitation of a planner (behaviour cloning, DAgger) and model-free fine-tuning (PPO)."""

from mbrl_ros.policies.imitation import DaggerDataset, ImitationConfig, clone_policy, dagger, fit_policy
from mbrl_ros.policies.network import PolicyNetwork
from mbrl_ros.policies.ppo import PPO, PPOConfig

__all__ = ["PPO", "DaggerDataset", "ImitationConfig", "PPOConfig", "PolicyNetwork", "clone_policy", "dagger",
           "fit_policy"]
