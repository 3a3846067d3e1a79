"""Offscreen RGB rendering of a MuJoCo model, headless (EGL or OSMesa, see :mod:`mbrl_ros.sim.headless`).

An OpenGL context is bound to the thread that made it current, while ROS executors call back on whichever
thread is free: every OpenGL call of a :class:`OffscreenRenderer` therefore runs on one worker thread of its
own. Rendering is deterministic: equal physics states give equal images.
"""

from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np


class OffscreenRenderer:
    """Renders ``(height, width, 3)`` uint8 RGB frames of a model's scene from a named or free camera."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int) -> None:
        """Creates the OpenGL context (about a second on a software renderer).

        Raises:
            ValueError: the size is not positive or exceeds the model's offscreen buffer.
            RuntimeError: no OpenGL backend could be initialised (the message says how to get one).
        """
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        self.width = width
        self.height = height
        self._model = model
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mujoco-render")
        try:
            self._renderer = self._worker.submit(mujoco.Renderer, model, height, width).result()
        except (ImportError, RuntimeError, AttributeError) as error:
            self._worker.shutdown()
            raise RuntimeError(
                f"MuJoCo cannot render offscreen here ({error}). Run 'make setup' (it installs a headless "
                "backend), or set MUJOCO_GL=egl or MUJOCO_GL=osmesa."
            ) from error

    def render(self, data: mujoco.MjData, camera: str | int = -1) -> np.ndarray:
        """An RGB frame of ``data``'s current state (its derived quantities must be up to date).

        Args:
            data: the physics state to draw.
            camera: a camera name or id; -1 is MuJoCo's free camera.
        Returns:
            (height, width, 3) uint8 image.
        """
        if self._renderer is None:
            raise RuntimeError("render() after close()")

        def draw() -> np.ndarray:
            self._renderer.update_scene(data, camera=camera)
            return self._renderer.render()

        return self._worker.submit(draw).result()

    def close(self) -> None:
        """Frees the OpenGL context; the renderer cannot be used afterwards."""
        if self._renderer is not None:
            self._worker.submit(self._renderer.close).result()
            self._renderer = None
            self._worker.shutdown()

    def __enter__(self) -> "OffscreenRenderer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
