"""Where MJCF files come from: a filesystem path, or a file inside an installed Python package.

A package reference reads ``package:relative/path.xml``, e.g.
``gymnasium_robotics:envs/assets/hand/manipulate_block.xml`` (the Shadow hand with a block),
``gymnasium:envs/mujoco/assets/half_cheetah.xml`` or ``mbrl_ros:sim/assets/cartpole.xml``. The package is
located without importing it, and nothing is ever downloaded.
"""

import importlib.util
import re
from pathlib import Path

_PACKAGE_REFERENCE = re.compile(r"^(?P<package>[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*):(?P<path>[^:]+)$")


def package_directory(package: str) -> Path:
    """The directory of an installed Python package, found without importing it.

    Raises:
        FileNotFoundError: no such package is installed.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError) as error:
        raise FileNotFoundError(f"Python package '{package}' is not installed ({error})") from error
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"Python package '{package}' is not installed (or is a module, not a package)")
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_mjcf(reference: str | Path) -> Path:
    """The MJCF file a reference names.

    Args:
        reference: a path to an XML file, or ``package:relative/path.xml`` inside an installed package.

    Raises:
        FileNotFoundError: the file (or the package) does not exist, with the place that was looked at.
    """
    text = str(reference)
    match = _PACKAGE_REFERENCE.match(text)
    if match and not Path(text).exists():
        path = package_directory(match["package"]) / match["path"]
        if not path.is_file():
            raise FileNotFoundError(f"MJCF '{text}': no file {path} in package '{match['package']}'")
        return path
    path = Path(text).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"MJCF '{text}': no such file ({path.resolve()})")
    return path
