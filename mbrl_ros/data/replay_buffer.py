"""Replay buffer of transitions: growable arrays in memory, optionally persisted to disk as they arrive.

With a ``directory``, transitions are appended to a :class:`~mbrl_ros.data.chunk_store.ChunkStore` by a
background thread every ``flush_interval`` seconds (and on :meth:`ReplayBuffer.flush` /
:meth:`ReplayBuffer.close`), so a process killed with SIGKILL loses at most the transitions added in the last
``flush_interval`` seconds (plus the time one write takes); opening the directory again reloads the rest.
"""

import atexit
import logging
import os
import threading

import numpy as np

from mbrl_ros.data.chunk_store import ChunkStore, stored_dimensions
from mbrl_ros.data.transitions import TransitionBatch

_LOG = logging.getLogger(__name__)
DEFAULT_FLUSH_INTERVAL = 1.0  # (seconds) the most a SIGKILL can lose of what was added


class ReplayBuffer:
    """Transitions (s, a, s', r, done) of one state and action size, in arrival order.

    Thread-safe: one thread may add while another samples or trains on :meth:`all`.

    Args:
        state_dim: S.
        action_dim: A.
        directory: where to persist the transitions (created or reopened); None keeps them in memory only.
        flush_interval: seconds between background writes to ``directory``.

    Raises:
        ValueError: ``directory`` holds a buffer of other dimensions, or ``flush_interval`` is not positive.
    """

    def __init__(
        self, state_dim: int, action_dim: int, directory: str | os.PathLike | None = None,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    ):
        if not flush_interval > 0:
            raise ValueError(f"flush_interval must be a positive number of seconds, got {flush_interval}")
        self.state_dim, self.action_dim = state_dim, action_dim
        self.flush_interval = flush_interval
        self._lock = threading.Lock()  # guards the arrays and the counters
        self._write_lock = threading.Lock()  # serialises writes to the store
        self._size = 0
        self._flushed = 0
        self._arrays = self._empty(1024)
        self._store: ChunkStore | None = None
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if directory is not None:
            self._store = ChunkStore(directory, state_dim, action_dim)
            loaded = self._store.load()
            if loaded:
                self._append(TransitionBatch.concatenate(loaded))
            self._flushed = self._size
            self._flusher = threading.Thread(target=self._flush_periodically, name="replay-buffer-flush", daemon=True)
            self._flusher.start()
            atexit.register(self.close)

    @classmethod
    def open(cls, directory: str | os.PathLike, flush_interval: float = DEFAULT_FLUSH_INTERVAL) -> "ReplayBuffer":
        """Reopens the buffer persisted in ``directory``, with the dimensions it was created with.

        Raises:
            ValueError: ``directory`` holds no replay buffer.
        """
        state_dim, action_dim = stored_dimensions(directory)
        return cls(state_dim, action_dim, directory=directory, flush_interval=flush_interval)

    def _empty(self, capacity: int) -> dict[str, np.ndarray]:
        return {"states": np.empty((capacity, self.state_dim), np.float32),
                "actions": np.empty((capacity, self.action_dim), np.float32),
                "next_states": np.empty((capacity, self.state_dim), np.float32),
                "rewards": np.empty(capacity, np.float32), "dones": np.empty(capacity, np.bool_)}

    def __len__(self) -> int:
        return self._size

    @property
    def unflushed(self) -> int:
        """Transitions added but not yet on disk (0 without a directory)."""
        return self._size - self._flushed if self._store is not None else 0

    @property
    def skipped_chunks(self) -> list:
        """Chunk files found unreadable when the directory was opened (renamed ``*.corrupt``)."""
        return list(self._store.skipped_chunks) if self._store is not None else []

    def add(
        self, state: np.ndarray, action: np.ndarray, next_state: np.ndarray, reward: float | np.ndarray = 0.0,
        done: bool | np.ndarray = False,
    ) -> None:
        """Adds one transition ((S,), (A,), (S,), scalar, scalar) or a batch ((N, S), (N, A), (N, S), (N,), (N,)).

        Raises:
            ValueError: shapes that do not match the buffer, or NaN / inf values (nothing is added).
        """
        single = np.ndim(state) == 1
        rows = 1 if single else np.shape(state)[0]

        def batched(value: object, dtype: type) -> np.ndarray:
            array = np.asarray(value, dtype)
            if array.ndim == 0:  # a scalar reward or done for every row
                return np.full(rows, array)
            return array[None] if single else array

        batch = TransitionBatch(batched(state, np.float32), batched(action, np.float32),
                                batched(next_state, np.float32), batched(reward, np.float32),
                                batched(done, np.bool_))
        self._append(TransitionBatch.from_arrays(batch.arrays(), self.state_dim, self.action_dim))

    def _append(self, batch: TransitionBatch) -> None:
        with self._lock:
            needed = self._size + len(batch)
            capacity = self._arrays["states"].shape[0]
            if needed > capacity:
                grown = self._empty(max(needed, 2 * capacity))
                for name, array in grown.items():
                    array[: self._size] = self._arrays[name][: self._size]
                self._arrays = grown
            for name, array in batch.arrays().items():
                self._arrays[name][self._size: needed] = array
            self._size = needed

    def all(self) -> TransitionBatch:
        """A copy of every transition, in arrival order."""
        with self._lock:
            return TransitionBatch(*(array[: self._size].copy() for array in self._arrays.values()))

    def sample(self, batch_size: int, generator: np.random.Generator) -> TransitionBatch:
        """``batch_size`` transitions drawn uniformly with replacement."""
        with self._lock:
            if self._size == 0:
                raise ValueError("cannot sample from an empty replay buffer")
            index = generator.integers(0, self._size, size=batch_size)
            return TransitionBatch(*(array[index] for array in self._arrays.values()))

    def split(self, validation_fraction: float, seed: int = 0) -> tuple[TransitionBatch, TransitionBatch]:
        """Training and validation transitions.

        Membership is a seeded hash of each transition's position, so it is stable as the buffer grows: a
        transition once held out for validation stays held out, and a model continued on more data is never
        validated on what it was trained on.

        Returns:
            train, validation (about ``validation_fraction`` of the transitions).
        """
        if not 0 <= validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        data = self.all()
        held_out = uniform_hash(np.arange(len(data)), seed) < validation_fraction
        return data[~held_out], data[held_out]

    def flush(self) -> None:
        """Writes the transitions added since the last flush to disk now (no-op without a directory)."""
        if self._store is None:
            return
        with self._write_lock:
            with self._lock:
                start, end = self._flushed, self._size
                pending = TransitionBatch(*(array[start:end].copy() for array in self._arrays.values()))
            self._store.append(pending)
            with self._lock:
                self._flushed = end

    def _flush_periodically(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except OSError as error:  # e.g. a full disk: keep the transitions in memory and retry
                _LOG.error("replay buffer: could not write to %s: %s", self._store.directory, error)

    def close(self) -> None:
        """Stops the background writer and flushes what is left. The buffer stays usable in memory."""
        if self._flusher is None:
            return
        self._stop.set()
        self._flusher.join()
        self._flusher = None
        atexit.unregister(self.close)
        self.flush()

    def __enter__(self) -> "ReplayBuffer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def uniform_hash(index: np.ndarray, seed: int) -> np.ndarray:
    """A deterministic pseudo-random number in [0, 1) per integer in ``index`` (splitmix64 finaliser)."""
    z = index.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % 2**64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)
