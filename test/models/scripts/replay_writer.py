"""Adds transitions to a persistent replay buffer about once a millisecond until killed.

Usage: replay_writer.py DIRECTORY FLUSH_INTERVAL. Prints the wall-clock start time, then writes transitions
whose state is (sequence number, seconds since that start): what a test needs to tell what was lost.
"""

import sys
import time

from mbrl_ros.data import ReplayBuffer

directory, flush_interval = sys.argv[1], float(sys.argv[2])
buffer = ReplayBuffer(2, 1, directory=directory, flush_interval=flush_interval)
sequence = len(buffer)
start = time.time()
print(start, flush=True)
while True:
    buffer.add([sequence, time.time() - start], [0.0], [sequence + 1, 0.0], reward=sequence)
    sequence += 1
    time.sleep(0.001)
