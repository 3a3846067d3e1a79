"""Lint is a test: the code base stays clean under ruff (configuration in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

from support import REPO_ROOT


def test_ruff_reports_nothing():
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run([str(ruff), "check", "--no-cache", str(REPO_ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
