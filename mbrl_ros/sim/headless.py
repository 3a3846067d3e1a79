"""Headless OpenGL for MuJoCo's offscreen renderer: choose a backend, probe it, install one if none works.

MuJoCo binds its OpenGL backend when ``mujoco`` is first imported, from ``MUJOCO_GL``; :mod:`mbrl_ros.sim`
calls :func:`configure` before importing it. The choice, when ``MUJOCO_GL`` is unset and no X display is
available: ``osmesa`` when Mesa's OSMesa library is installed (software rendering, present only where
``make setup`` installed it because nothing else worked, or by the user's choice), else ``egl`` when an EGL
library is present (Mesa's llvmpipe or a GPU driver). Both render deterministically for equal states.

``python mbrl_ros/sim/headless.py [--install]`` renders one frame with that choice in a subprocess; with
``--install`` it installs Debian's ``libosmesa6`` (apt-get, as root or with passwordless sudo) when the
probe fails and OSMesa is missing, then probes again. ``make setup`` runs it. This module uses the standard
library only, so that it runs before the package is installed.
"""

import argparse
import ctypes.util
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Mapping

OSMESA_DEBIAN_PACKAGE = "libosmesa6"

_PROBE_SCRIPT = """
import mujoco, numpy
model = mujoco.MjModel.from_xml_string(
    '<mujoco><worldbody><light pos="0 0 1"/><geom type="box" size=".1 .1 .1" rgba="1 0 0 1"/></worldbody></mujoco>')
data = mujoco.MjData(model)
mujoco.mj_forward(model, data)
renderer = mujoco.Renderer(model, 16, 16)
renderer.update_scene(data)
image = renderer.render()
renderer.close()
assert image.shape == (16, 16, 3) and numpy.ptp(image) > 0, "the rendered frame is blank"
"""


def choose_backend(
    environ: Mapping[str, str], find_library: Callable[[str], str | None] = ctypes.util.find_library
) -> str | None:
    """The ``MUJOCO_GL`` value to use: the user's if set; None (MuJoCo's default, GLFW) with an X display.

    Args:
        environ: the process environment.
        find_library: looks a shared library up by its short name (``ctypes.util.find_library``).
    """
    if environ.get("MUJOCO_GL"):
        return environ["MUJOCO_GL"]
    if environ.get("DISPLAY"):
        return None
    if find_library("OSMesa"):
        return "osmesa"
    if find_library("EGL"):
        return "egl"
    return None


def configure() -> str | None:
    """Sets ``MUJOCO_GL`` (and a matching ``PYOPENGL_PLATFORM``) for this process and its children.

    Must run before ``mujoco`` is imported (which binds its backend); warns when it runs after. Returns the backend
    chosen (None: MuJoCo's default).
    """
    backend = choose_backend(os.environ)
    if backend and "MUJOCO_GL" not in os.environ:
        if "mujoco" in sys.modules:
            warnings.warn(f"mujoco was imported before mbrl_ros.sim chose the {backend} OpenGL backend, so it keeps "
                          "its default (GLFW), which cannot render without an X display: import mbrl_ros.sim (or "
                          f"mbrl_ros.tasks) before mujoco, or set MUJOCO_GL={backend}", RuntimeWarning, stacklevel=2)
        os.environ["MUJOCO_GL"] = backend
        if backend in ("egl", "osmesa"):
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend


def probe(python: str = sys.executable, timeout: float = 120.0) -> tuple[bool, str]:
    """Renders one frame in a fresh interpreter with the backend :func:`choose_backend` picks there.

    Returns:
        whether it worked, and the backend name with the error output when it did not.
    """
    environ = dict(os.environ)
    backend = choose_backend(environ)
    if backend:
        environ["MUJOCO_GL"] = backend
    result = subprocess.run(
        [python, "-c", _PROBE_SCRIPT], env=environ, capture_output=True, text=True, timeout=timeout
    )
    return result.returncode == 0, f"MUJOCO_GL={backend or '(MuJoCo default)'}: {result.stderr.strip()[-2000:]}"


def install_osmesa() -> tuple[bool, str]:
    """Installs Debian's libosmesa6 with apt-get, as root or through passwordless sudo."""
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        return False, "apt-get is not available on this system"
    prefix: list[str] = []
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            return False, "not root and sudo is not available"
        prefix = [sudo, "-n"]
    commands = [[*prefix, apt_get, "update"], [*prefix, apt_get, "install", "-y", OSMESA_DEBIAN_PACKAGE]]
    for command in commands:
        environ = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        result = subprocess.run(command, capture_output=True, text=True, env=environ)
        if result.returncode != 0:
            return False, f"'{' '.join(command)}' failed: {result.stderr.strip()[-1000:]}"
    return True, f"installed {OSMESA_DEBIAN_PACKAGE}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check (and with --install, provide) headless MuJoCo rendering.")
    parser.add_argument("--install", action="store_true", help=f"install {OSMESA_DEBIAN_PACKAGE} if nothing renders")
    args = parser.parse_args(argv)

    works, detail = probe()
    if works:
        print(f"headless rendering works ({detail.split(':')[0]})")
        return 0
    if not args.install or ctypes.util.find_library("OSMesa"):
        print(f"error: headless MuJoCo rendering does not work here.\n  {detail}\n"
              "  Install a working EGL driver or OSMesa (Debian: apt-get install libosmesa6), or set MUJOCO_GL.",
              file=sys.stderr)
        return 1
    print(f"headless rendering failed ({detail.splitlines()[0]}); installing {OSMESA_DEBIAN_PACKAGE}")
    installed, message = install_osmesa()
    if not installed:
        print(f"error: no headless rendering backend works and {OSMESA_DEBIAN_PACKAGE} could not be installed: "
              f"{message}.\n  Install it by hand (apt-get install {OSMESA_DEBIAN_PACKAGE}) and run make setup again.",
              file=sys.stderr)
        return 1
    works, detail = probe()
    if not works:
        print(f"error: headless rendering still fails after installing {OSMESA_DEBIAN_PACKAGE}.\n  {detail}",
              file=sys.stderr)
        return 1
    print(f"headless rendering works ({detail.split(':')[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
