"""The replay buffer: growable arrays, sampling, stable splits, and persistence that survives SIGKILL."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mbrl_ros.data import DEFAULT_FLUSH_INTERVAL, ChunkStore, ReplayBuffer, TransitionBatch

WRITER = Path(__file__).parent / "scripts" / "replay_writer.py"


def random_batch(rng: np.random.Generator, count: int, state_dim: int = 3, action_dim: int = 2) -> TransitionBatch:
    return TransitionBatch(rng.normal(size=(count, state_dim)).astype(np.float32),
                           rng.normal(size=(count, action_dim)).astype(np.float32),
                           rng.normal(size=(count, state_dim)).astype(np.float32),
                           rng.normal(size=count).astype(np.float32), rng.random(count) < 0.1)


def add(buffer: ReplayBuffer, batch: TransitionBatch) -> None:
    buffer.add(batch.states, batch.actions, batch.next_states, batch.rewards, batch.dones)


def reopened(directory: Path, state_dim: int = 3, action_dim: int = 2) -> TransitionBatch:
    """Everything a buffer persisted in ``directory`` holds, read by a new buffer (closed again)."""
    with ReplayBuffer(state_dim, action_dim, directory=directory) as buffer:
        return buffer.all()


def assert_same(a: TransitionBatch, b: TransitionBatch) -> None:
    for name, array in a.arrays().items():
        np.testing.assert_array_equal(array, b.arrays()[name], err_msg=name)


def test_single_and_batched_adds_grow_the_buffer_in_order():
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(3, 2)
    batch = random_batch(rng, 3000)
    buffer.add(batch.states[0], batch.actions[0], batch.next_states[0], float(batch.rewards[0]), bool(batch.dones[0]))
    add(buffer, batch[1:])
    assert len(buffer) == 3000
    assert_same(buffer.all(), batch)
    buffer.add(np.zeros((2, 3)), np.zeros((2, 2)), np.ones((2, 3)))  # scalar reward and done apply to every row
    assert len(buffer) == 3002 and not buffer.all().dones[-2:].any()


def test_chained_marks_the_transitions_an_episode_continues_from():
    states = np.arange(6, dtype=np.float32)[:, None]  # episode A: 0 -> 1 -> 2 (done); episode B: 3 -> 4; 5 -> 6
    next_states = states + 1
    next_states[4] = 9  # 4 -> 9, but the next transition starts from 5: a gap (a dropped message)
    dones = np.array([False, False, True, False, False, False])
    batch = TransitionBatch(states, np.zeros((6, 1), np.float32), next_states, np.zeros(6, np.float32), dones)
    np.testing.assert_array_equal(batch.chained(), [True, True, False, True, False, False])
    assert batch[:1].chained().tolist() == [False] and batch[:0].chained().shape == (0,)


@pytest.mark.parametrize("state, action, next_state, message", [
    (np.zeros(4), np.zeros(2), np.zeros(3), "states"),
    (np.zeros(3), np.zeros(1), np.zeros(3), "actions"),
    (np.zeros((5, 3)), np.zeros((4, 2)), np.zeros((5, 3)), "actions"),
    (np.array([0, np.nan, 0]), np.zeros(2), np.zeros(3), "NaN"),
    (np.zeros(3), np.zeros(2), np.array([np.inf, 0, 0]), "NaN or inf"),
])
def test_malformed_transitions_are_rejected_and_nothing_is_added(state, action, next_state, message):
    buffer = ReplayBuffer(3, 2)
    with pytest.raises(ValueError, match=message):
        buffer.add(state, action, next_state)
    assert len(buffer) == 0


def test_sampling_is_uniform_and_seeded():
    rng = np.random.default_rng(1)
    buffer = ReplayBuffer(3, 2)
    add(buffer, random_batch(rng, 100))
    first = buffer.sample(20_000, np.random.default_rng(5))
    again = buffer.sample(20_000, np.random.default_rng(5))
    assert_same(first, again)
    rows = {tuple(row) for row in buffer.all().states}
    assert all(tuple(row) in rows for row in first.states[:100])
    counts = np.unique(first.rewards, return_counts=True)[1]
    assert len(counts) == 100 and counts.min() > 120 and counts.max() < 290  # ~200 each
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(3, 2).sample(1, rng)


def test_the_validation_split_is_stable_as_the_buffer_grows():
    rng = np.random.default_rng(2)
    buffer = ReplayBuffer(3, 2)
    add(buffer, random_batch(rng, 1000))
    train, validation = buffer.split(0.2, seed=3)
    assert len(train) + len(validation) == 1000 and 150 < len(validation) < 250
    add(buffer, random_batch(rng, 4000))
    _, grown_validation = buffer.split(0.2, seed=3)
    assert_same(grown_validation[: len(validation)], validation)
    _, other_seed = buffer.split(0.2, seed=4)
    assert not np.array_equal(other_seed.states[:50], grown_validation.states[:50])


def test_persisted_transitions_reload(tmp_path):
    rng = np.random.default_rng(3)
    batch = random_batch(rng, 500)
    with ReplayBuffer(3, 2, directory=tmp_path, flush_interval=60) as buffer:
        add(buffer, batch[:200])
        buffer.flush()
        add(buffer, batch[200:])
        assert buffer.unflushed == 300
    with ReplayBuffer(3, 2, directory=tmp_path) as second:  # close() flushed the rest
        assert_same(second.all(), batch)
        add(second, random_batch(rng, 10))
    assert len(reopened(tmp_path)) == 510


def test_the_background_writer_flushes_within_the_interval(tmp_path):
    assert DEFAULT_FLUSH_INTERVAL <= 1.0
    buffer = ReplayBuffer(3, 2, directory=tmp_path, flush_interval=0.1)
    try:
        add(buffer, random_batch(np.random.default_rng(4), 50))
        deadline = time.monotonic() + 5
        while buffer.unflushed and time.monotonic() < deadline:
            time.sleep(0.02)
        assert buffer.unflushed == 0
        assert len(ChunkStore(tmp_path, 3, 2).load()[0]) == 50
    finally:
        buffer.close()


def test_chunks_are_merged_so_that_files_stay_few(tmp_path):
    rng = np.random.default_rng(5)
    store = ChunkStore(tmp_path, 3, 2, merge_fanout=4, max_merge_level=2)
    parts = [random_batch(rng, int(rng.integers(1, 20))) for _ in range(70)]
    for part in parts:
        store.append(part)
    files = sorted(path.name for path in tmp_path.glob("chunk-*.npz"))
    assert len(files) == store.chunk_count < 14  # 70 chunks: 4 of level 2, 1 of level 1, 2 of level 0
    assert sum("-L2." in name for name in files) == 4
    assert_same(TransitionBatch.concatenate(ChunkStore(tmp_path, 3, 2).load()), TransitionBatch.concatenate(parts))


def test_a_merge_interrupted_before_deleting_its_parts_loses_and_duplicates_nothing(tmp_path):
    rng = np.random.default_rng(6)
    store = ChunkStore(tmp_path, 3, 2, merge_fanout=4)
    parts = [random_batch(rng, 5) for _ in range(4)]
    for part in parts[:3]:
        store.append(part)
    first_three = {path.name: path.read_bytes() for path in tmp_path.glob("chunk-*.npz")}
    store.append(parts[3])  # the fourth chunk: the four merge into one
    assert store.chunk_count == 1 and len(list(tmp_path.glob("chunk-*.npz"))) == 1
    for name, content in first_three.items():  # as if killed after the merged chunk's rename, before the deletions
        (tmp_path / name).write_bytes(content)
    reloaded = ChunkStore(tmp_path, 3, 2).load()
    assert_same(TransitionBatch.concatenate(reloaded), TransitionBatch.concatenate(parts))
    assert len(list(tmp_path.glob("chunk-*.npz"))) == 1


def test_corrupt_chunks_and_leftover_temporary_files_are_dealt_with(tmp_path, caplog):
    rng = np.random.default_rng(7)
    store = ChunkStore(tmp_path, 3, 2, merge_fanout=100)
    parts = [random_batch(rng, 8) for _ in range(3)]
    for part in parts:
        store.append(part)
    middle = sorted(tmp_path.glob("chunk-*.npz"))[1]
    middle.write_bytes(middle.read_bytes()[:-40])  # damaged behind our back
    (tmp_path / ".tmp-chunk-000000000024-000000000030-L0.npz").write_bytes(b"half a chunk")
    (tmp_path / "chunk-000000000000-000000000008-L0.npz.corrupt").write_bytes(b"old")
    buffer = ReplayBuffer(3, 2, directory=tmp_path)
    buffer.close()
    assert_same(buffer.all(), TransitionBatch.concatenate([parts[0], parts[2]]))
    assert buffer.skipped_chunks == [middle.with_name(middle.name + ".corrupt")]
    assert "skipping chunk" in caplog.text
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_chunk_with_wrong_contents_is_skipped(tmp_path):
    store = ChunkStore(tmp_path, 3, 2)
    np.savez(tmp_path / "chunk-000000000000-000000000004-L0.npz", states=np.zeros((4, 3), np.float32))
    with open(tmp_path / "chunk-000000000004-000000000006-L0.npz", "wb") as file:
        np.save(file, np.array([object()], dtype=object), allow_pickle=True)  # a pickle in disguise
    assert store.load() == []
    assert len(store.skipped_chunks) == 2


def test_a_directory_of_another_shape_is_refused(tmp_path):
    ReplayBuffer(3, 2, directory=tmp_path).close()
    with pytest.raises(ValueError, match="state_dim"):
        ReplayBuffer(4, 2, directory=tmp_path)
    (tmp_path / "buffer.json").write_text("{broken")
    with pytest.raises(ValueError, match="not a readable"):
        ReplayBuffer(3, 2, directory=tmp_path)


def run_writer_and_kill(directory: Path, flush_interval: float, run_for: float) -> tuple[float, float]:
    """Starts the writer subprocess and SIGKILLs it after ``run_for`` seconds.

    Returns:
        the wall time the writer started counting from, and the wall time it was killed.
    """
    writer = subprocess.Popen([sys.executable, str(WRITER), str(directory), str(flush_interval)],
                              stdout=subprocess.PIPE, text=True)
    try:
        started = float(writer.stdout.readline())  # it is up and writing
        time.sleep(run_for)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        killed = time.time()
        writer.wait(timeout=10)
        writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    return started, killed


def test_sigkill_mid_stream_loses_at_most_the_flush_interval(tmp_path):
    flush_interval, scheduling_slack = 0.25, 0.5  # (seconds) slack: a loaded 2-core machine delays the writer
    for _ in range(2):  # the second writer reopens what the first left, and appends
        started, killed = run_writer_and_kill(tmp_path, flush_interval, run_for=1.5)
        transitions = reopened(tmp_path, 2, 1)
        sequence = transitions.states[:, 0]
        assert len(sequence) > 200, "the writer barely wrote anything"
        np.testing.assert_array_equal(sequence, np.arange(len(sequence)))  # a gapless prefix, no duplicates
        np.testing.assert_array_equal(transitions.rewards, sequence)
        newest_on_disk = started + float(transitions.states[-1, 1])
        assert killed - newest_on_disk <= flush_interval + scheduling_slack, (
            f"lost the last {killed - newest_on_disk:.2f} s of transitions")


def test_a_failed_write_keeps_the_transitions_and_is_retried(tmp_path, caplog, monkeypatch):
    buffer = ReplayBuffer(3, 2, directory=tmp_path, flush_interval=0.05)
    try:
        real_append, failures = buffer._store.append, []

        def full_disk_once(batch):
            if not failures:
                failures.append(batch)
                raise OSError(28, "No space left on device")
            real_append(batch)

        monkeypatch.setattr(buffer._store, "append", full_disk_once)
        add(buffer, random_batch(np.random.default_rng(8), 30))
        deadline = time.monotonic() + 5
        while (buffer.unflushed or not failures) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert failures and buffer.unflushed == 0
        assert "No space left on device" in caplog.text
    finally:
        buffer.close()
    assert len(reopened(tmp_path)) == 30
