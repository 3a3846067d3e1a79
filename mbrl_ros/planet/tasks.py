"""Pixel versions of tasks: the same physics and rewards, seen by a camera framed for 64 x 64 frames."""

from mbrl_ros.tasks.base import CameraSpec
from mbrl_ros.tasks.cartpole import CartpoleSwingUp

PIXEL_CARTPOLE = "mbrl_ros.planet.tasks:CartpoleSwingUpPixels"


class CartpoleSwingUpPixels(CartpoleSwingUp):
    """Cart-pole swing-up as PlaNet sees it: a camera 2.4 m in front of the rail, 50 degrees wide.

    The task's own side camera shows the whole 6 m rail, which leaves the 0.6 m pole about 8 pixels long at
    64 x 64; this one shows the middle 2.2 m (the pole about 17 pixels), as dm_control's cart-pole camera
    frames its pole. The cart can leave the picture, as in dm_control.
    """

    name = "cartpole_swingup_pixels"
    camera = CameraSpec(position=(0.0, -2.4, 0.0), target=(0.0, 0.0, 0.0), fovy=50.0)
