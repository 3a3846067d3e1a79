"""Batched unit-quaternion arithmetic in torch, scalar first ``[w, x, y, z]`` (MuJoCo's order)."""

import itertools

import torch
from torch import Tensor

from mbrl_ros.tensors import constant_like


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
    return q * constant_like(_CONJUGATE_SIGNS, q)


_CONJUGATE_SIGNS = torch.tensor([1.0, -1.0, -1.0, -1.0])


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


def cube_rotations() -> Tensor:
    """The 24 rotations (24, 3, 3) that map a cube centred at the origin, its faces normal to the axes, onto
    itself: the signed permutation matrices of determinant +1, the identity first (on the CPU, float32)."""
    rotations = []
    for permutation in itertools.permutations(range(3)):
        inversions = sum(permutation[i] > permutation[j] for i in range(3) for j in range(i + 1, 3))
        for signs in itertools.product((1.0, -1.0), repeat=3):
            if (-1) ** inversions * signs[0] * signs[1] * signs[2] > 0:
                rotations.append([[signs[row] if column == permutation[row] else 0.0 for column in range(3)]
                                  for row in range(3)])
    return torch.tensor(rotations, device="cpu")


_CUBE_ROTATIONS = cube_rotations()
# (9, 24): a flattened R times column k is trace(R G_k)
_CUBE_TRACE_WEIGHTS = _CUBE_ROTATIONS.transpose(-1, -2).flatten(-2).T.contiguous()


def canonical_cube_rotation(rotation: Tensor) -> Tensor:
    """The orientation of a cube that is closest to the identity among the 24 that look the same.

    A cube at orientation ``R`` (body to world) sits exactly as at ``R G`` for each ``G`` of
    :func:`cube_rotations`. This returns the ``R G`` of largest trace (smallest rotation angle); ties go to the
    first in :func:`cube_rotations`' order.

    Args:
        rotation: (..., 3, 3) rotation matrices.

    Returns:
        (..., 3, 3) rotation matrices.
    """
    traces = rotation.flatten(-2) @ constant_like(_CUBE_TRACE_WEIGHTS, rotation)  # trace(R G) = sum_ij R_ij G_ji
    return rotation @ constant_like(_CUBE_ROTATIONS, rotation)[traces.argmax(dim=-1)]
