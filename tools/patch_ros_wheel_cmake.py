"""Rewrite the build machine's Python paths baked into the ROS 2 wheels' CMake exports.

The cp311 wheels export ``/opt/python/cp311-cp311/include/python3.11`` and that prefix's numpy include
directory from their ``share/<pkg>/cmake/*.cmake`` files; CMake's generate step then fails on imported
targets naming non-existent paths. This points them at this interpreter's include directories.
Idempotent: a second run changes nothing.

Usage: python tools/patch_ros_wheel_cmake.py PREFIX
"""

import sys
import sysconfig
from pathlib import Path

import numpy

_BUILD_MACHINE_PYTHON = "/opt/python/cp311-cp311"
_REPLACEMENTS = {
    f"{_BUILD_MACHINE_PYTHON}/include/python3.11": sysconfig.get_paths()["include"],
    f"{_BUILD_MACHINE_PYTHON}/lib/python3.11/site-packages/numpy/_core/include": numpy.get_include(),
}


def patch(prefix: Path) -> int:
    """Rewrite the known bad paths under ``prefix/share/*/cmake``; returns the number of files changed."""
    changed = 0
    for cmake_file in sorted(prefix.glob("share/*/cmake/*.cmake")):
        text = cmake_file.read_text()
        patched = text
        for bad, good in _REPLACEMENTS.items():
            patched = patched.replace(bad, good)
        if patched != text:
            cmake_file.write_text(patched)
            changed += 1
    return changed


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(f"patched {patch(Path(sys.argv[1]))} ROS CMake export file(s)")
