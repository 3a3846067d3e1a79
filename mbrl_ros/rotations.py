"""Batched unit-quaternion arithmetic in torch, scalar first ``[w, x, y, z]`` (MuJoCo's order)."""

import torch
from torch import Tensor


def quaternion_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product ``a * b`` of (..., 4) quaternions (broadcasting)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def unit_quaternion(q: Tensor) -> Tensor:
    """(..., 4) quaternions scaled to unit length (a zero quaternion stays zero)."""
    return q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def quaternion_conjugate(q: Tensor) -> Tensor:
    """``[w, -x, -y, -z]`` of (..., 4) quaternions: the inverse rotation of a unit quaternion."""
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def quaternion_angle(a: Tensor, b: Tensor) -> Tensor:
    """Angle (rad, in [0, pi]) of the rotation between orientations ``a`` and ``b``, (..., 4) -> (...).

    Inputs need not be normalised (a learned model's predictions rarely are); ``q`` and ``-q`` are the same
    orientation. The arctangent form stays accurate near 0 and pi, where arccos of the dot product does not.
    """
    relative = quaternion_multiply(quaternion_conjugate(unit_quaternion(a)), unit_quaternion(b))
    return 2.0 * torch.atan2(relative[..., 1:].norm(dim=-1), relative[..., 0].abs())


def quaternion_to_matrix(q: Tensor) -> Tensor:
    """Rotation matrices (..., 3, 3) of (..., 4) quaternions, normalised first; ``q`` and ``-q`` give the same."""
    w, x, y, z = unit_quaternion(q).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).unflatten(-1, (3, 3))
