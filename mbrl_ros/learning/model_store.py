"""Versioned models on disk, written so that a crash at any moment leaves the newest complete version."""

import os
import re
import shutil
from pathlib import Path
from typing import Any

from torch import nn

from mbrl_ros.models import load_model, save_model

_VERSION_DIRECTORY = re.compile(r"^v(\d{6,})$")
LATEST_FILE = "LATEST"  # names the newest version's directory


class ModelStore:
    """``directory/v000001/``, ``v000002/``, ... each a model written by :func:`mbrl_ros.models.save_model`.

    A version is written into a temporary directory and renamed into place, then ``LATEST`` is replaced
    atomically: readers never see a half-written model. The newest ``keep`` versions are kept.

    Args:
        directory: created if missing.
        keep: how many versions to keep on disk (at least 1).
    """

    def __init__(self, directory: str | os.PathLike, keep: int = 5):
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.directory, self.keep = Path(directory), keep
        self.directory.mkdir(parents=True, exist_ok=True)

    def versions(self) -> list[int]:
        """Complete versions on disk, oldest first."""
        found = (_VERSION_DIRECTORY.match(path.name) for path in self.directory.iterdir() if path.is_dir())
        return sorted(int(match.group(1)) for match in found if match)

    def latest_version(self) -> int:
        """The newest complete version, 0 when there is none."""
        try:
            name = (self.directory / LATEST_FILE).read_text().strip()
        except FileNotFoundError:
            name = ""
        match = _VERSION_DIRECTORY.match(name)
        if match and (self.directory / name).is_dir():
            return int(match.group(1))
        versions = self.versions()  # LATEST missing or stale after a crash: the directories tell
        return versions[-1] if versions else 0

    def path(self, version: int) -> Path:
        return self.directory / f"v{version:06d}"

    def load(self, version: int | None = None, expected_kind: str | None = None) -> nn.Module:
        """The model of ``version`` (default: the newest), fully validated by :func:`load_model`."""
        version = self.latest_version() if version is None else version
        if version == 0:
            raise FileNotFoundError(f"no model stored in {self.directory}")
        return load_model(self.path(version), expected_kind)

    def save(self, model: nn.Module, version: int, extra: dict[str, Any] | None = None) -> Path:
        """Stores ``model`` as ``version`` (newer than all stored ones) and makes it the latest."""
        if version <= self.latest_version():
            raise ValueError(f"version {version} is not newer than the stored {self.latest_version()}")
        final = self.path(version)
        staging = self.directory / f".staging-{final.name}"
        shutil.rmtree(staging, ignore_errors=True)
        save_model(model, staging, extra)
        os.replace(staging, final)
        pointer = self.directory / f".{LATEST_FILE}.tmp"
        pointer.write_text(final.name + "\n")
        os.replace(pointer, self.directory / LATEST_FILE)
        for old in self.versions()[: -self.keep]:
            shutil.rmtree(self.path(old), ignore_errors=True)
        return final
