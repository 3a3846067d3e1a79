"""Transitions for learning: the replay buffer and its crash-safe persistence."""

from mbrl_ros.data.chunk_store import ChunkStore
from mbrl_ros.data.replay_buffer import DEFAULT_FLUSH_INTERVAL, ReplayBuffer
from mbrl_ros.data.transitions import TransitionBatch

__all__ = ["DEFAULT_FLUSH_INTERVAL", "ChunkStore", "ReplayBuffer", "TransitionBatch"]
