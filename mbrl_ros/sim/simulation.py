"""A MuJoCo model stepped one control period at a time: named state access, clamped actuation, rendering.

Conventions (shared by the tasks, the Gymnasium environments and the bridge node):

- a body pose is the 7-vector ``[x, y, z, qw, qx, qy, qz]``: position (m) and unit orientation quaternion
  (scalar first, MuJoCo's order) in the world frame;
- a body twist is the 6-vector ``[vx, vy, vz, wx, wy, wz]``: the linear velocity (m/s) of the body frame's
  origin and the angular velocity (rad/s), both in world coordinates;
- actions are actuator controls in the model's actuator order and units, clamped to each ``ctrlrange``.
"""

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import mujoco
import numpy as np

from mbrl_ros.sim.assets import resolve_mjcf
from mbrl_ros.sim.rendering import OffscreenRenderer

_ARTICULATED = {int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)}


def load_model(mjcf: str | Path, edit: Callable[[mujoco.MjSpec], None] | None = None) -> mujoco.MjModel:
    """Compiles an MJCF file (a path or ``package:relative/path``), after ``edit`` changed its spec."""
    spec = mujoco.MjSpec.from_file(str(resolve_mjcf(mjcf)))
    if edit is not None:
        edit(spec)
    with warnings.catch_warnings():
        # Gymnasium's half_cheetah.xml sets <compiler settotalmass>, which MuJoCo 4 deprecates but still applies.
        warnings.filterwarnings("ignore", message="compiler attribute 'settotalmass' is deprecated")
        return spec.compile()


def actuator_transmissions(model: mujoco.MjModel) -> tuple[tuple[str | None, ...], np.ndarray]:
    """Each actuator's joint (None for tendon/site transmissions) and whether it is a position servo.

    A position servo (MuJoCo ``<position>``) has a joint transmission and force ``kp * (ctrl - q)``: its control
    is a target joint position, so holding a posture means commanding the measured position.
    """
    joints = tuple(
        model.joint(int(model.actuator_trnid[a, 0])).name if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT
        else None
        for a in range(model.nu)
    )
    gains = model.actuator_gainprm[:, 0]
    servo = np.array([
        joints[a] is not None and model.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_AFFINE and gains[a] > 0
        and bool(np.isclose(model.actuator_biasprm[a, 1], -gains[a]))
        for a in range(model.nu)
    ], dtype=bool)
    return joints, servo


class Simulation:
    """One MuJoCo world whose :meth:`step` advances one control period ``dt`` (``frame_skip`` physics steps).

    After every :meth:`step`, :meth:`reset` and :meth:`forward`, the derived quantities (body poses,
    velocities, actuator forces) match the state, so readers see a consistent snapshot.
    """

    def __init__(self, model: mujoco.MjModel, dt: float) -> None:
        """
        Args:
            model: the compiled model (shared read-only between simulations is fine).
            dt: control period (s), a whole multiple of the model's physics timestep.
        Raises:
            ValueError: ``dt`` is not a positive whole multiple of the timestep.
        """
        timestep = float(model.opt.timestep)
        frame_skip = round(dt / timestep)
        if dt <= 0 or frame_skip < 1 or abs(frame_skip * timestep - dt) > 1e-9 * max(1.0, dt):
            raise ValueError(f"control period {dt} s is not a whole multiple of the physics timestep {timestep} s")
        self.model = model
        self.data = mujoco.MjData(model)
        self.dt = float(dt)
        self.frame_skip = frame_skip
        self.joint_names: tuple[str, ...] = tuple(
            model.joint(j).name for j in range(model.njnt) if int(model.jnt_type[j]) in _ARTICULATED
        )
        self._qpos_address = {model.joint(j).name: int(model.jnt_qposadr[j]) for j in range(model.njnt)}
        self._dof_address = {model.joint(j).name: int(model.jnt_dofadr[j]) for j in range(model.njnt)}
        self.actuator_names: tuple[str, ...] = tuple(model.actuator(a).name for a in range(model.nu))
        limited = model.actuator_ctrllimited.astype(bool)
        self.ctrl_low = np.where(limited, model.actuator_ctrlrange[:, 0], -np.inf)
        self.ctrl_high = np.where(limited, model.actuator_ctrlrange[:, 1], np.inf)
        self.actuator_joints, self.position_actuators = actuator_transmissions(model)
        self._renderers: dict[tuple[int, int], OffscreenRenderer] = {}
        self._body_ids: dict[str, int] = {}
        self.reset()

    @classmethod
    def from_mjcf(
        cls, mjcf: str | Path, dt: float, edit: Callable[[mujoco.MjSpec], None] | None = None
    ) -> "Simulation":
        """Loads ``mjcf`` (see :func:`load_model`) and wraps it at control period ``dt`` (s)."""
        return cls(load_model(mjcf, edit), dt)

    @property
    def time(self) -> float:
        """Simulated time since the last reset (s)."""
        return float(self.data.time)

    def reset(self) -> None:
        """Back to the model's reference configuration (``qpos0``, zero velocity, zero controls)."""
        mujoco.mj_resetData(self.model, self.data)
        mujoco.mj_forward(self.model, self.data)

    def forward(self) -> None:
        """Recomputes derived quantities after the state was written directly."""
        mujoco.mj_forward(self.model, self.data)

    def clamp(self, ctrl: np.ndarray) -> np.ndarray:
        """``ctrl`` (nu,) clamped to the actuators' control ranges."""
        ctrl = np.asarray(ctrl, dtype=np.float64)
        if ctrl.shape != (self.model.nu,):
            raise ValueError(f"expected {self.model.nu} actuator controls, got shape {ctrl.shape}")
        return np.clip(ctrl, self.ctrl_low, self.ctrl_high)

    def step(self, ctrl: np.ndarray) -> np.ndarray:
        """Applies ``ctrl`` (nu,) clamped to ctrlrange for one control period; returns the controls applied."""
        applied = self.clamp(ctrl)
        if not np.all(np.isfinite(applied)):
            raise ValueError("actuator controls must be finite")
        self.data.ctrl[:] = applied
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        mujoco.mj_forward(self.model, self.data)
        return applied

    def hold_command(self) -> np.ndarray:
        """Controls that hold the current posture: position servos aim at their joint's position, others 0."""
        ctrl = np.zeros(self.model.nu)
        for actuator in np.flatnonzero(self.position_actuators):
            ctrl[actuator] = self.data.qpos[self._qpos_address[self.actuator_joints[actuator]]]
        return np.clip(ctrl, self.ctrl_low, self.ctrl_high)

    def _addresses(self, names: Sequence[str], table: dict[str, int]) -> list[int]:
        try:
            return [table[name] for name in names]
        except KeyError as error:
            raise KeyError(f"no joint named {error.args[0]!r} in the model") from None

    def joint_positions(self, names: Sequence[str]) -> np.ndarray:
        """Positions (rad or m) of the named hinge/slide joints, (len(names),)."""
        return self.data.qpos[self._addresses(names, self._qpos_address)].copy()

    def joint_velocities(self, names: Sequence[str]) -> np.ndarray:
        """Velocities (rad/s or m/s) of the named hinge/slide joints, (len(names),)."""
        return self.data.qvel[self._addresses(names, self._dof_address)].copy()

    def joint_efforts(self, names: Sequence[str]) -> np.ndarray:
        """Actuator force (N m or N) acting along each named joint, (len(names),)."""
        return self.data.qfrc_actuator[self._addresses(names, self._dof_address)].copy()

    def set_joint_positions(self, names: Sequence[str], positions: np.ndarray) -> None:
        self.data.qpos[self._addresses(names, self._qpos_address)] = positions

    def set_joint_velocities(self, names: Sequence[str], velocities: np.ndarray) -> None:
        self.data.qvel[self._addresses(names, self._dof_address)] = velocities

    def _body(self, name: str) -> int:
        body = self._body_ids.get(name)
        if body is None:
            body = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, name)
            if body < 0:
                raise KeyError(f"no body named {name!r} in the model")
            self._body_ids[name] = body
        return body

    def body_pose(self, name: str) -> np.ndarray:
        """World pose ``[x, y, z, qw, qx, qy, qz]`` of a body, (7,)."""
        body = self._body(name)
        return np.concatenate([self.data.xpos[body], self.data.xquat[body]])

    def body_twist(self, name: str) -> np.ndarray:
        """``[vx, vy, vz, wx, wy, wz]`` of a body frame in world coordinates, (6,)."""
        velocity = np.zeros(6)
        mujoco.mj_objectVelocity(self.model, self.data, mujoco.mjtObj.mjOBJ_BODY, self._body(name), velocity, 0)
        return np.concatenate([velocity[3:], velocity[:3]])

    def _free_joint(self, body: int) -> int | None:
        start, count = self.model.body_jntadr[body], self.model.body_jntnum[body]
        if count == 1 and self.model.jnt_type[start] == mujoco.mjtJoint.mjJNT_FREE:
            return int(start)
        return None

    def set_body_pose(self, name: str, pose: np.ndarray) -> None:
        """Places a mocap body or a free-floating body at a world pose (7,); call :meth:`forward` afterwards."""
        body = self._body(name)
        pose = np.asarray(pose, dtype=np.float64)
        quaternion = pose[3:] / np.linalg.norm(pose[3:])
        mocap = self.model.body_mocapid[body]
        if mocap >= 0:
            self.data.mocap_pos[mocap] = pose[:3]
            self.data.mocap_quat[mocap] = quaternion
            return
        joint = self._free_joint(body)
        if joint is None:
            raise ValueError(f"body {name!r} is neither a mocap body nor attached by a free joint")
        address = self.model.jnt_qposadr[joint]
        self.data.qpos[address : address + 3] = pose[:3]
        self.data.qpos[address + 3 : address + 7] = quaternion

    def set_body_twist(self, name: str, twist: np.ndarray) -> None:
        """Sets the world-frame twist (6,) of a free-floating body; call :meth:`forward` afterwards."""
        body = self._body(name)
        joint = self._free_joint(body)
        if joint is None:
            raise ValueError(f"body {name!r} is not attached by a free joint")
        address = self.model.jnt_dofadr[joint]
        rotation = np.zeros(9)
        mujoco.mju_quat2Mat(rotation, self.data.qpos[self.model.jnt_qposadr[joint] + 3 :][:4])
        self.data.qvel[address : address + 3] = twist[:3]
        self.data.qvel[address + 3 : address + 6] = rotation.reshape(3, 3).T @ np.asarray(twist[3:])

    def get_state(self) -> np.ndarray:
        """The full integration state (time, qpos, qvel, actuator activations, mocap poses, controls, ...)."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, state, spec)
        return state

    def set_state(self, state: np.ndarray) -> None:
        """Restores a state from :meth:`get_state` and recomputes the derived quantities."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        mujoco.mj_setState(self.model, self.data, np.asarray(state, dtype=np.float64), spec)
        mujoco.mj_forward(self.model, self.data)

    def render(self, width: int = 64, height: int = 64, camera: str | int = -1) -> np.ndarray:
        """(height, width, 3) uint8 RGB image of the current state from a named camera (-1: free camera)."""
        renderer = self._renderers.get((width, height))
        if renderer is None:
            renderer = self._renderers[(width, height)] = OffscreenRenderer(self.model, width, height)
        return renderer.render(self.data, camera)

    def close(self) -> None:
        """Frees the renderers' OpenGL contexts (the physics stays usable)."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
