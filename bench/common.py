"""Shared benchmark plumbing: the peer (mbrl-lib in .venv-peer), matmul rooflines, and ratio reports.

Benchmarks print ratios against a peer or a bound measured in the same run, never bare timings: absolute
figures depend on the machine and its load, ratios taken side by side much less.
"""

import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = REPO_ROOT / ".venv-peer" / "bin" / "python"


def set_threads(threads: int) -> None:
    """Uses ``threads`` intra-op threads here; :func:`run_peer` gives the peer the same number."""
    torch.set_num_threads(threads)


def run_peer(script: Path, *args: str, threads: int, timeout: float = 3600) -> dict:
    """Runs ``script`` with the peer's interpreter and returns the JSON object its last stdout line holds."""
    if not PEER_PYTHON.exists():
        raise SystemExit(f"the benchmark peer is missing: run 'make peer' (expected {PEER_PYTHON})")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PEER_THREADS=str(threads))
    result = subprocess.run(
        [str(PEER_PYTHON), str(script), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"peer script {script.name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def seconds_per_call(call: Callable[[], object], repeats: int) -> float:
    """Mean wall time (s) of ``repeats`` calls of ``call``, after one call not counted (warm-up)."""
    call()
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - start) / repeats


def mlp_matmul_roofline(layer_shapes: Sequence[tuple[int, int]], rows: int, backward: bool, repeats: int = 20) -> float:
    """FLOP/s that plain batched matmuls reach on an MLP's layer shapes, here and now.

    Args:
        layer_shapes: (in_features, out_features) per layer.
        rows: rows per matmul (batch size, or batch x members for an ensemble evaluated as one bmm).
        backward: also time the two matmuls of the backward pass (3x the forward FLOPs in all).
    Returns:
        floating-point operations per second over the whole layer stack.
    """
    weights = [torch.randn(fan_in, fan_out) for fan_in, fan_out in layer_shapes]
    inputs = [torch.randn(rows, fan_in) for fan_in, _ in layer_shapes]
    grads = [torch.randn(rows, fan_out) for _, fan_out in layer_shapes]
    flops_per_pass = sum(2 * rows * fan_in * fan_out for fan_in, fan_out in layer_shapes) * (3 if backward else 1)

    def one_pass() -> None:
        for x, w, g in zip(inputs, weights, grads, strict=True):
            torch.mm(x, w)
            if backward:
                torch.mm(g, w.T)
                torch.mm(x.T, g)

    return flops_per_pass / seconds_per_call(one_pass, repeats)


def report(label: str, ours: float, reference: float, goal: float, reference_name: str, unit: str = "") -> bool:
    """Prints ``label: ours, reference, ratio (goal)`` and returns whether the ratio meets ``goal``."""
    ratio = ours / reference
    verdict = "meets" if ratio >= goal else "MISSES"
    print(f"{label}: ours {ours:.4g}{unit}, {reference_name} {reference:.4g}{unit}, ratio {ratio:.3f} "
          f"({verdict} goal >= {goal})", flush=True)
    return ratio >= goal
