"""Batched forward kinematics in torch for serial chains of hinge and slide joints, read off a MuJoCo model.

Rewards are functions of the state vector, which holds joint positions, not fingertip positions: a task
whose reward needs where a point of the robot is (the reacher's fingertip, the pusher's gripper) computes
it from the joint positions with a :class:`SerialChain`, exactly as MuJoCo's ``mj_kinematics`` does
(joint displacements relative to ``qpos0``).
"""

from collections.abc import Sequence

import mujoco
import numpy as np
import torch
from torch import Tensor

from mbrl_ros.tensors import constant_like


def _rotation_matrix(quaternion: np.ndarray) -> np.ndarray:
    matrix = np.zeros(9)
    mujoco.mju_quat2Mat(matrix, np.asarray(quaternion, dtype=np.float64))
    return matrix.reshape(3, 3)


def _axis_angle_matrices(axis: Tensor, angle: Tensor) -> Tensor:
    """Rotation matrices (N, 3, 3) about a unit ``axis`` (3,) by ``angle`` (N,) rad (Rodrigues)."""
    x, y, z = axis
    zero = torch.zeros((), dtype=axis.dtype, device=axis.device)
    cross = torch.stack([torch.stack([zero, -z, y]), torch.stack([z, zero, -x]), torch.stack([-y, x, zero])])
    sin, cos = angle.sin()[:, None, None], angle.cos()[:, None, None]
    eye = torch.eye(3, dtype=axis.dtype, device=axis.device)
    return eye + sin * cross + (1.0 - cos) * (cross @ cross)


class SerialChain:
    """World position of a point fixed to a body, as a batched function of the joints between it and the world.

    Only hinge and slide joints may lie on the path (a free or ball joint raises ValueError).
    """

    def __init__(self, model: mujoco.MjModel, body: str, point: Sequence[float] = (0.0, 0.0, 0.0)) -> None:
        """
        Args:
            model: the compiled model.
            body: name of the body the point is fixed to.
            point: the point in that body's frame (m).
        """
        body_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
        if body_id < 0:
            raise KeyError(f"no body named {body!r} in the model")
        path = []
        while body_id != 0:
            path.append(body_id)
            body_id = int(model.body_parentid[body_id])
        # One entry per body from the root: its offset in the parent, then its joints.
        self._bodies: list[tuple[Tensor, Tensor, list[tuple[str, int, Tensor, Tensor, float]]]] = []
        names = []
        for body_id in reversed(path):
            joints = []
            for joint in range(model.body_jntadr[body_id], model.body_jntadr[body_id] + model.body_jntnum[body_id]):
                kind = int(model.jnt_type[joint])
                if kind not in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
                    raise ValueError(f"joint {model.joint(joint).name!r} on the chain to {body!r} is not hinge/slide")
                joints.append((
                    "hinge" if kind == mujoco.mjtJoint.mjJNT_HINGE else "slide",
                    len(names),
                    torch.as_tensor(model.jnt_axis[joint], dtype=torch.float64),
                    torch.as_tensor(model.jnt_pos[joint], dtype=torch.float64),
                    float(model.qpos0[model.jnt_qposadr[joint]]),
                ))
                names.append(model.joint(joint).name)
            self._bodies.append((
                torch.as_tensor(model.body_pos[body_id], dtype=torch.float64),
                torch.as_tensor(_rotation_matrix(model.body_quat[body_id])),
                joints,
            ))
        self.joint_names: tuple[str, ...] = tuple(names)
        self._point = torch.as_tensor(np.asarray(point, dtype=np.float64))

    def __call__(self, joint_positions: Tensor) -> Tensor:
        """World position (N, 3) of the point for joint positions (N, J) in :attr:`joint_names` order, on their
        device and in their dtype."""
        def here(constant: Tensor) -> Tensor:
            return constant_like(constant, joint_positions)

        batch = joint_positions.shape[0]
        position = joint_positions.new_zeros(batch, 3)
        rotation = torch.eye(3, dtype=joint_positions.dtype, device=joint_positions.device).expand(batch, 3, 3)
        for offset, body_rotation, joints in self._bodies:
            position = position + rotation @ here(offset)
            rotation = rotation @ here(body_rotation)
            for kind, column, axis, anchor, reference in joints:
                displacement = joint_positions[:, column] - reference
                axis = here(axis)
                if kind == "slide":
                    position = position + (rotation @ axis) * displacement[:, None]
                else:
                    anchor_world = position + rotation @ here(anchor)
                    rotation = rotation @ _axis_angle_matrices(axis, displacement)
                    position = anchor_world - rotation @ here(anchor)
        return position + rotation @ here(self._point)
