"""Append-only, crash-safe storage of transitions on disk, as immutable chunk files.

Every chunk is written under a temporary name, fsynced and renamed into place (an atomic step on POSIX file
systems), so a process killed at any instant leaves only whole chunks behind; leftover temporary files are
removed on the next open. Chunk ``chunk-<start>-<end>-L<level>.npz`` holds transitions ``[start, end)``
(plain arrays read with ``allow_pickle=False``). To keep the number of files small, every time
``merge_fanout`` consecutive chunks of one level exist they are merged into one chunk of the next level (up
to ``max_merge_level``); the merged chunk is renamed into place before its parts are deleted, and a chunk
whose range another chunk covers is dropped on open, so a crash during a merge loses nothing either.
"""

import json
import logging
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mbrl_ros.data.transitions import TransitionBatch

_LOG = logging.getLogger(__name__)
_CHUNK_NAME = re.compile(r"^chunk-(\d{12})-(\d{12})-L(\d+)\.npz$")
_TEMPORARY_PREFIX = ".tmp-"
_METADATA = "buffer.json"
_FORMAT = "mbrl_ros.replay_buffer"
_FORMAT_VERSION = 1


def stored_dimensions(directory: str | os.PathLike) -> tuple[int, int]:
    """(state_dim, action_dim) of the buffer stored in ``directory``.

    Raises:
        ValueError: ``directory`` holds no readable replay-buffer description.
    """
    path = Path(directory) / _METADATA
    try:
        description = json.loads(path.read_text())
        if description.get("format") != _FORMAT:
            raise ValueError(f"format {description.get('format')!r}, expected {_FORMAT!r}")
        return int(description["state_dim"]), int(description["action_dim"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, TypeError,
            ValueError) as error:
        raise ValueError(f"{path} is not a readable replay-buffer description: {error}") from error


@dataclass(frozen=True)
class _Chunk:
    start: int
    end: int
    level: int
    path: Path


class ChunkStore:
    """A directory of transition chunks of one state and action size.

    Args:
        directory: where the chunks live; created if missing.
        state_dim: S.
        action_dim: A.
        merge_fanout: number of consecutive same-level chunks merged into one.
        max_merge_level: chunks of this level are never merged further (bounds the work of one merge).

    Raises:
        ValueError: the directory holds a buffer of other dimensions or an unknown format.
    """

    def __init__(
        self, directory: str | os.PathLike, state_dim: int, action_dim: int, merge_fanout: int = 16,
        max_merge_level: int = 3,
    ):
        if merge_fanout < 2:
            raise ValueError(f"merge_fanout must be at least 2, got {merge_fanout}")
        self.directory = Path(directory)
        self.state_dim, self.action_dim = state_dim, action_dim
        self.merge_fanout, self.max_merge_level = merge_fanout, max_merge_level
        self.skipped_chunks: list[Path] = []  # unreadable or inconsistent chunks found on open, renamed *.corrupt
        self.directory.mkdir(parents=True, exist_ok=True)
        self._check_or_write_metadata()
        self._chunks: list[_Chunk] = []
        self._next_id = 0

    def _check_or_write_metadata(self) -> None:
        path = self.directory / _METADATA
        expected = {"format": _FORMAT, "version": _FORMAT_VERSION, "state_dim": self.state_dim,
                    "action_dim": self.action_dim}
        if path.exists():
            try:
                found = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                raise ValueError(f"{path} is not a readable replay-buffer description: {error}") from error
            if found != expected:
                raise ValueError(f"{self.directory} holds a replay buffer described as {found}, expected {expected}")
        else:
            self._write_atomically(path, json.dumps(expected).encode())

    def load(self) -> list[TransitionBatch]:
        """Reads every chunk in order (after cleaning up what an interrupted writer left behind).

        Unreadable or inconsistent chunks are logged, renamed ``*.corrupt`` and skipped (listed in
        :attr:`skipped_chunks`); the others load.
        """
        for leftover in self.directory.glob(f"{_TEMPORARY_PREFIX}*"):
            leftover.unlink()
        chunks = []
        for path in self.directory.glob("chunk-*.npz"):
            match = _CHUNK_NAME.match(path.name)
            if match is None or int(match[1]) >= int(match[2]):
                self._skip(path, "its name is not chunk-<start>-<end>-L<level>.npz with start < end")
                continue
            chunks.append(_Chunk(int(match[1]), int(match[2]), int(match[3]), path))
        chunks.sort(key=lambda chunk: (chunk.start, -chunk.end))
        kept: list[_Chunk] = []
        for chunk in chunks:
            covered_until = kept[-1].end if kept else 0
            if chunk.end <= covered_until:
                chunk.path.unlink()  # merged into a chunk that covers it; its deletion was interrupted
            elif chunk.start < covered_until:
                self._skip(chunk.path, f"it overlaps the chunk ending at {covered_until}")
            else:
                kept.append(chunk)
        batches = []
        for chunk in kept:
            try:
                batches.append(self._read(chunk))
                self._chunks.append(chunk)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
                self._skip(chunk.path, str(error))
        self._next_id = self._chunks[-1].end if self._chunks else 0
        return batches

    def append(self, batch: TransitionBatch) -> None:
        """Writes ``batch`` as a new chunk (atomically), then merges chunks if enough have accumulated."""
        if len(batch) == 0:
            return
        chunk = _Chunk(self._next_id, self._next_id + len(batch), 0, Path())
        self._chunks.append(self._write(chunk, batch))
        self._next_id = chunk.end
        self._merge()

    @property
    def chunk_count(self) -> int:
        return len(self._chunks)

    def _merge(self) -> None:
        fanout = self.merge_fanout
        while len(self._chunks) >= fanout:
            tail = self._chunks[-fanout:]
            level = tail[0].level
            same_level = all(chunk.level == level for chunk in tail)
            contiguous = all(a.end == b.start for a, b in zip(tail[:-1], tail[1:], strict=True))
            if level >= self.max_merge_level or not same_level or not contiguous:
                return
            parts = [self._read(chunk) for chunk in tail]
            merged = TransitionBatch.concatenate(parts)
            written = self._write(_Chunk(tail[0].start, tail[-1].end, level + 1, Path()), merged)
            for chunk in tail:
                chunk.path.unlink()
            self._fsync_directory()
            self._chunks[-fanout:] = [written]

    def _write(self, chunk: _Chunk, batch: TransitionBatch) -> _Chunk:
        path = self.directory / f"chunk-{chunk.start:012d}-{chunk.end:012d}-L{chunk.level}.npz"
        temporary = self.directory / f"{_TEMPORARY_PREFIX}{path.name}"
        with open(temporary, "wb") as file:
            np.savez(file, **batch.arrays())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        self._fsync_directory()
        return _Chunk(chunk.start, chunk.end, chunk.level, path)

    def _read(self, chunk: _Chunk) -> TransitionBatch:
        with np.load(chunk.path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        batch = TransitionBatch.from_arrays(arrays, self.state_dim, self.action_dim)
        if len(batch) != chunk.end - chunk.start:
            raise ValueError(f"holds {len(batch)} transitions, its name says {chunk.end - chunk.start}")
        return batch

    def _skip(self, path: Path, reason: str) -> None:
        _LOG.warning("replay buffer: skipping chunk %s: %s (renamed to *.corrupt)", path, reason)
        corrupt = path.with_name(path.name + ".corrupt")
        os.replace(path, corrupt)
        self.skipped_chunks.append(corrupt)

    def _write_atomically(self, path: Path, content: bytes) -> None:
        temporary = path.with_name(f"{_TEMPORARY_PREFIX}{path.name}")
        with open(temporary, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        self._fsync_directory()

    def _fsync_directory(self) -> None:
        descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
