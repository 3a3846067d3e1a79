"""Where the installed package's files are: share/mbrl_ros (configs, launch files, message definitions)."""

import os
import sys
from pathlib import Path

PACKAGE = "mbrl_ros"


def package_share() -> Path:
    """The installed ``share/mbrl_ros`` directory.

    Found through the ament index when ``AMENT_PREFIX_PATH`` is set (a sourced workspace, the Makefile), else
    in the running interpreter's prefix (an activated venv that `make setup` installed into).

    Raises:
        FileNotFoundError: the package is not installed where either looks.
    """
    if os.environ.get("AMENT_PREFIX_PATH"):
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            return Path(get_package_share_directory(PACKAGE))
        except PackageNotFoundError:
            pass
    share = Path(sys.prefix) / "share" / PACKAGE
    if (share / "package.xml").is_file():
        return share
    raise FileNotFoundError(
        f"share/{PACKAGE} not found: source the workspace's setup.bash or run 'make setup' (looked in {share})"
    )


def config_path(name_or_path: str | os.PathLike) -> Path:
    """A config file given as a path, or by name (``shadow_hand_cube`` or ``shadow_hand_cube.yaml``) in share."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    name = path.name if path.suffix == ".yaml" else f"{path.name}.yaml"
    installed = package_share() / "config" / name
    if installed.is_file():
        return installed
    available = sorted(p.stem for p in (package_share() / "config").glob("*.yaml"))
    raise FileNotFoundError(f"no config {name_or_path!s}: not a file, and not one of {available}")
