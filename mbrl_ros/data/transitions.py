"""A batch of transitions (s, a, s', r, done) as plain arrays, the unit the replay buffer stores and serves."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_FLOAT_FIELDS = ("states", "actions", "next_states", "rewards")


@dataclass(frozen=True)
class TransitionBatch:
    """N transitions, batch-first, float32 (``dones`` bool).

    Attributes:
        states: (N, S) s.
        actions: (N, A) a.
        next_states: (N, S) s'.
        rewards: (N,) r(s, a, s').
        dones: (N,) whether s' ended its episode.
    """

    states: np.ndarray
    actions: np.ndarray
    next_states: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray

    def __len__(self) -> int:
        return self.states.shape[0]

    def __getitem__(self, index: slice | np.ndarray) -> "TransitionBatch":
        """The transitions at ``index`` (a slice, integer indices or a boolean mask)."""
        return TransitionBatch(*(array[index] for array in self.arrays().values()))

    def arrays(self) -> dict[str, np.ndarray]:
        """Field name -> array, in declaration order."""
        return {"states": self.states, "actions": self.actions, "next_states": self.next_states,
                "rewards": self.rewards, "dones": self.dones}

    def chained(self) -> np.ndarray:
        """(N,) bool: whether transition i + 1 continues transition i (i's episode goes on and i + 1 starts from
        i's next state); the last transition continues nothing."""
        follows = np.zeros(len(self), dtype=bool)
        follows[:-1] = ~self.dones[:-1] & np.all(self.states[1:] == self.next_states[:-1], axis=1)
        return follows

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], state_dim: int, action_dim: int) -> "TransitionBatch":
        """Validates arrays read from outside (a file): exact fields, dtypes, shapes, finite values.

        Raises:
            ValueError: naming what is wrong.
        """
        expected = ("states", "actions", "next_states", "rewards", "dones")
        if set(arrays) != set(expected):
            raise ValueError(f"expected the arrays {expected}, got {sorted(arrays)}")
        n = arrays["states"].shape[0] if arrays["states"].ndim else -1
        shapes = {"states": (n, state_dim), "actions": (n, action_dim), "next_states": (n, state_dim),
                  "rewards": (n,), "dones": (n,)}
        for name in expected:
            array = arrays[name]
            dtype = np.bool_ if name == "dones" else np.float32
            if array.dtype != dtype or array.shape != shapes[name]:
                raise ValueError(f"{name} is {array.dtype} {array.shape}, expected {np.dtype(dtype)} {shapes[name]}")
            if name in _FLOAT_FIELDS and not np.isfinite(array).all():
                raise ValueError(f"{name} holds NaN or inf")
        return cls(*(arrays[name] for name in expected))

    @classmethod
    def concatenate(cls, batches: Sequence["TransitionBatch"]) -> "TransitionBatch":
        """One batch holding ``batches`` one after the other (at least one batch)."""
        return cls(*(np.concatenate(columns) for columns in zip(*(b.arrays().values() for b in batches),
                                                                strict=True)))
