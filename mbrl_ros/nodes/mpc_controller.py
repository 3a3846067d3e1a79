"""mpc_controller: model-predictive control of a robot through its own topics, with a learned dynamics model.

Reads the robot's state from ``/joint_states`` and ``/<bridge>/<body>_pose`` / ``_twist`` (the task's state
layout; remap them onto a hardware driver's topics), and publishes ``<controller>/commands``
(std_msgs/Float64MultiArray, the task's actuator order, ros2_control forward_command_controller convention)
or ``<controller>/joint_trajectory`` (trajectory_msgs/JointTrajectory, by joint name).

Two modes:
    ``realtime``: a planner thread plans over and over from the newest state (anytime: the newest complete
        plan is always available) and a timer at ``control_rate`` publishes the action of that plan for the
        current control period. A tick with no usable plan is counted as a missed deadline and holds the last
        command. The timer never waits for the planner.
    ``lockstep``: every new state is planned for at once and its action published (the simulation bridge
        steps once per command): deterministic, as fast as the planner. With ``episode_model_wait`` > 0 it
        holds the next episode's first state after an episode end until a newer model arrives (at most that
        many seconds), so each episode is planned with the model trained on all the episodes before it (PETS).

Models arrive as ``mbrl_ros/ModelUpdate`` on ``model_topic`` (transient local, so a late-joining controller gets
the newest one); each is validated (SHA-256, architecture, shapes, finiteness) and swapped in between two
plans, an invalid one is rejected and the old one kept. Until the first model it explores: random actions
within the bounds, smoothed by ``exploration_beta``.

Policies (POPLIN, model-based -> model-free): a ``policy`` model (:class:`~mbrl_ros.policies.PolicyNetwork`)
arrives as ``ModelUpdate`` on ``policy_topic`` (e.g. exported by the learner), validated like the models. With
``planner: policy`` the controller runs it directly instead of planning; with ``planner: mpc`` it is the
fallback (``policy_fallback``) for a tick without a usable plan or a failed plan, and a POPLIN optimizer plans
with it (and distils into it at episode ends).

Safety: every command passes :class:`~mbrl_ros.control.SafetyFilter` (finite, within the actuator limits,
at most ``max_command_step`` from the previous one); a state older than ``state_timeout`` (wall clock) makes
it hold the last command and report; ``~/enable`` (std_srvs/SetBool) stops and resumes commanding.

Publishes ``~/status`` (mbrl_ros/PlannerStatus) after every plan and ``/diagnostics``
(diagnostic_msgs/DiagnosticArray) every second.
"""

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from mbrl_ros.control import CommandLimits, Plan, PlannerWorker, SafetyFilter
from mbrl_ros.control.exploration import SmoothedRandomActions
from mbrl_ros.models import DynamicsModel, ModelPayload, model_from_payload
from mbrl_ros.msg import EpisodeSummary, ModelUpdate, PlannerStatus
from mbrl_ros.nodes.conversions import (
    MessageError,
    command_message,
    diagnostic_array,
    seconds_to_stamp,
    stamp_to_seconds,
)
from mbrl_ros.nodes.parameters import declare_defaults, section
from mbrl_ros.nodes.spinning import run_node
from mbrl_ros.nodes.state_assembly import JOINT_STATES_TOPIC, TopicStateAssembler, pose_topic, twist_topic
from mbrl_ros.planning import MPC, MPCConfig, PolicyGuidedCEM
from mbrl_ros.policies import PolicyNetwork
from mbrl_ros.tasks import JointPostureTask, make_task

MODES = ("realtime", "lockstep")
PLANNERS = ("mpc", "policy")
COMMAND_INTERFACES = ("commands", "joint_trajectory")
STATE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
LATENCY_WINDOW = 200  # plans over which latency percentiles are reported
LOG_THROTTLE = 1.0  # s between repeated warnings of one kind
CLOCK_MISMATCH = 5.0  # s between a fresh state's stamp and the node's clock that can only be a clock mix-up

PARAMETERS: dict[str, tuple[Any, str]] = {
    "task": ("shadow_hand_cube", "task name or package.module:Class (mbrl_ros.tasks); options in task_options.*"),
    "mode": ("realtime", "realtime (timer publishes the newest plan's action) or lockstep (plan per state)"),
    "control_rate": (0.0, "Hz of the command timer in realtime mode; 0: 1 / the task's control period"),
    "controller": ("forward_command_controller", "commands go to <controller>/commands or /joint_trajectory"),
    "command_interface": ("commands", "commands (Float64MultiArray) or joint_trajectory (JointTrajectory)"),
    "bridge": ("mujoco_bridge", "node whose ~/<body>_pose, ~/<body>_twist and ~/episode topics are read"),
    "model_topic": ("/model_update", "ModelUpdate topic of the dynamics learner"),
    "max_command_step": (0.0, "largest change of a command between two ticks (command units); 0: no limit"),
    "state_timeout": (0.5, "s (wall clock) after which a state is stale: hold the last command and report"),
    "exploration_beta": (0.3, "smoothing of the exploratory random actions before any model (1: white)"),
    "planner_threads": (1, "torch threads of the planner (1 keeps the command timer's jitter low)"),
    "seed": (0, "seed of the exploration and of the planner; after the k-th episode end it plans with seed + k"),
    "model_dir": ("", "plan from the start with the newest model there (mbrl-ros train output, a learner data_dir "
                      "or a model directory); '' explores until the learner publishes one"),
    "goal_topic": ("~/goal", "sensor_msgs/JointState goal posture, by joint name (joint_posture task)"),
    "planner": ("mpc", "mpc (plan through the model) or policy (run the policy from policy_topic directly)"),
    "policy_topic": ("/policy_update", "ModelUpdate topic of the policy (kind 'policy'); '' for none"),
    "policy_fallback": (True, "act with the policy when a tick has no usable plan or a plan fails"),
    "episode_model_wait": (0.0, "lockstep: s (wall clock) to hold the next episode's first state after an episode "
                                "end until a newer model arrives (train between episodes, as PETS); 0: no wait"),
}


def offset_seed(seed: int | Sequence[int] | None, offset: int) -> int | list[int] | None:
    """The planner's seed(s) moved by ``offset`` (one per episode), None staying None (unseeded)."""
    if seed is None:
        return None
    if isinstance(seed, int):
        return seed + offset
    return [s + offset for s in seed]


class MpcController(Node):
    """The controller node; see the module docstring. Raises ValueError for unusable parameters."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__("mpc_controller", automatically_declare_parameters_from_overrides=True, **node_options)
        value = declare_defaults(self, PARAMETERS)
        if value["mode"] not in MODES:
            raise ValueError(f"parameter mode must be one of {MODES}, got {value['mode']!r}")
        if value["command_interface"] not in COMMAND_INTERFACES:
            raise ValueError(f"parameter command_interface must be one of {COMMAND_INTERFACES}")
        self.task = make_task(value["task"], **section(self, "task_options"))
        self.mode = value["mode"]
        self._init_policy(value)
        self.mpc_config = MPCConfig.from_dict({"seed": value["seed"], **section(self, "mpc")})
        torch.set_num_threads(int(value["planner_threads"]))
        self._dt = self.task.dt
        self._state_timeout = float(value["state_timeout"])
        low, high = self.task.action_bounds
        max_step = float(value["max_command_step"])
        self._limits = CommandLimits(low, high, max_step if max_step > 0 else None)
        self._explore = SmoothedRandomActions(low, high, value["exploration_beta"], value["seed"])
        self._safety: SafetyFilter | None = None  # anchored at the first measured posture
        self._assembler = TopicStateAssembler(self.task.layout)
        self._joint_positions: dict[str, float] = {}
        self._state: tuple[float, np.ndarray] | None = None  # newest (stamp, state)
        self._state_wall_time = -np.inf  # time.monotonic() when it arrived
        self._lock = threading.Lock()
        self.enabled = True
        self.model_version = 0  # of the model planned with
        self._newest_model_version = 0  # of the newest valid model received (swapped in before the next plan)
        self.missed_deadlines = 0
        self.ticks = 0
        self.stale_ticks = 0
        self.rejected: dict[str, int] = {}
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._plans_at: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._mpc: MPC | None = None
        self._worker: PlannerWorker | None = None
        self._episodes_ended = 0  # episode ends received: the planner's seed offset

        bridge, controller = value["bridge"], value["controller"].rstrip("/")
        self._command_interface = value["command_interface"]
        # Lockstep: a state answered before the robot subscribes to the commands would be lost, and the robot
        # would wait for its lockstep timeout; such a state is answered once the subscription matches.
        self._unanswered: tuple[float, np.ndarray] | None = None
        # Lockstep with episode_model_wait: after an episode end (stamp, newest model version then), states of the
        # next episode are held until a newer model arrives or the wait times out.
        self._episode_model_wait = float(value["episode_model_wait"])
        if not (np.isfinite(self._episode_model_wait) and self._episode_model_wait >= 0):
            raise ValueError(f"parameter episode_model_wait must be a finite number >= 0, got "
                             f"{value['episode_model_wait']!r}")
        self._awaiting_model: tuple[float, int] | None = None
        self._held: tuple[float, np.ndarray] | None = None
        self._model_wait_timer = None
        matched = PublisherEventCallbacks(matched=self._on_command_subscriber_matched, use_default_callbacks=False)
        command_type, topic = ((Float64MultiArray, f"{controller}/commands") if self._command_interface == "commands"
                               else (JointTrajectory, f"{controller}/joint_trajectory"))
        self._commands = self.create_publisher(command_type, topic, STATE_QOS, event_callbacks=matched)
        self._status = self.create_publisher(PlannerStatus, "~/status", STATE_QOS)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", STATE_QOS)
        state_group = MutuallyExclusiveCallbackGroup()
        self.create_subscription(JointState, JOINT_STATES_TOPIC, self._on_joint_state, STATE_QOS,
                                 callback_group=state_group)
        for body in self.task.layout.pose_bodies:
            self.create_subscription(PoseStamped, pose_topic(body, bridge), self._state_part(body, "pose"),
                                     STATE_QOS, callback_group=state_group)
        for body in self.task.layout.twist_bodies:
            self.create_subscription(TwistStamped, twist_topic(body, bridge), self._state_part(body, "twist"),
                                     STATE_QOS, callback_group=state_group)
        self.create_subscription(EpisodeSummary, f"/{bridge.strip('/')}/episode", self._on_episode_end, STATE_QOS)
        if self.planner == "mpc":
            self.create_subscription(ModelUpdate, value["model_topic"], self._on_model_update, LATCHED_QOS)
        if value["policy_topic"]:
            self.create_subscription(ModelUpdate, value["policy_topic"], self._on_policy_update, LATCHED_QOS)
        if isinstance(self.task, JointPostureTask):
            self.create_subscription(JointState, value["goal_topic"], self._on_goal, STATE_QOS)
        self.create_service(SetBool, "~/enable", self._on_enable)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        if self.mode == "realtime":
            rate = value["control_rate"] or 1.0 / self._dt
            # On the steady clock: simulated time advances only with /clock, which may be slower than the rate.
            self.create_timer(1.0 / rate, self._on_tick, MutuallyExclusiveCallbackGroup(), clock=steady)
        self.create_timer(1.0, self._publish_diagnostics, clock=steady)
        if value["model_dir"]:
            self._start_from_model_dir(value["model_dir"])
        self.get_logger().info(
            f"task {self.task.name}: {self.task.state_dim} states, {self.task.action_dim} actions, "
            f"mode {self.mode}, " + (f"planner {self.mpc_config.optimizer} (horizon {self.mpc_config.horizon}); "
                                     f"exploring until a model arrives on {value['model_topic']}"
                                     if self.planner == "mpc" else
                                     f"planner policy; exploring until one arrives on {value['policy_topic']}")
        )

    # ------------------------------------------------------------------------------------------ state in
    def _on_joint_state(self, msg: JointState) -> None:
        try:
            self._assembler.add_joint_state(msg)
        except MessageError as error:
            self._reject("joint_states", error)
            return
        self._joint_positions = dict(zip(msg.name, msg.position, strict=False))
        self._take_complete_state()

    def _state_part(self, body: str, kind: str):
        add = self._assembler.add_pose if kind == "pose" else self._assembler.add_twist

        def on_message(msg: PoseStamped | TwistStamped) -> None:
            try:
                add(body, msg)
            except MessageError as error:
                self._reject(f"{body}_{kind}", error)
                return
            self._take_complete_state()

        return on_message

    def _take_complete_state(self) -> None:
        complete = self._assembler.complete()
        if complete is None:
            return
        stamp, state = complete
        if not np.all(np.isfinite(state)):
            self._reject("state", MessageError("the assembled state has NaN or inf entries"))
            return
        with self._lock:
            self._state, self._state_wall_time = (stamp, state), time.monotonic()
            if self._safety is None:
                self._safety = SafetyFilter(self._limits, self.task.hold_command(self._joint_positions))
        if self.mode == "lockstep":
            if self._commands.get_subscription_count() == 0:
                self._unanswered = (stamp, state)
            elif self._awaiting_model is not None and stamp > self._awaiting_model[0]:
                self._held = (stamp, state)  # the next episode's: answered once the model trained on the last is in
            else:
                self._act_lockstep(stamp, state)
        elif self._worker is not None:
            self._worker.submit_state(stamp, state)

    def _reject(self, source: str, error: Exception) -> None:
        self.rejected[source] = self.rejected.get(source, 0) + 1
        self.get_logger().error(f"rejected {source}: {error}", throttle_duration_sec=LOG_THROTTLE)

    # ------------------------------------------------------------------------------------------ planning
    def _plan(self, state: np.ndarray, steps: int) -> tuple[np.ndarray, dict]:
        plan = self._mpc.plan(state, shift_steps=steps)
        stats = self._mpc.last_stats
        return plan.cpu().numpy(), {"iterations": stats.iterations, "predicted_return": stats.predicted_return,
                                    "disagreement": stats.disagreement, "model_version": self.model_version}

    def _after_plan(self, plan: Plan) -> None:
        if not self.context.ok():
            return  # shutting down (Ctrl-C) while the planner finished a plan: nothing to publish it on
        self._latencies.append(plan.plan_time)
        self._plans_at.append(time.monotonic())
        status = PlannerStatus(
            planner=self.mpc_config.optimizer, plan_time=plan.plan_time, iterations=int(plan.info["iterations"]),
            predicted_return=float(plan.info["predicted_return"]), disagreement=float(plan.info["disagreement"]),
            model_version=int(plan.info["model_version"]), missed_deadlines=self.missed_deadlines,
        )
        status.header.stamp = seconds_to_stamp(plan.state_stamp)
        self._status.publish(status)

    def _on_planner_error(self, error: Exception) -> None:
        self.get_logger().error(f"planning failed: {error}", throttle_duration_sec=LOG_THROTTLE)

    # ------------------------------------------------------------------------------------------ acting
    def _on_command_subscriber_matched(self, info: Any) -> None:
        unanswered, self._unanswered = self._unanswered, None
        if info.current_count_change > 0 and unanswered is not None and self.mode == "lockstep":
            self._act_lockstep(*unanswered)

    def _act_lockstep(self, stamp: float, state: np.ndarray) -> None:
        if not self.enabled:
            return
        if self.planner == "policy":
            self._publish(self._policy_action(state, fallback=False))
            return
        if self._worker is None:
            self._publish(self._explore())
            return
        try:
            plan = self._worker.plan_now(stamp, state)
        except Exception as error:  # keep the robot safe and the node alive whatever the planner does
            self._on_planner_error(error)
            self._publish(self._policy_action(state, fallback=True))
            return
        self._publish(plan.actions[0])

    def _on_tick(self) -> None:
        self.ticks += 1
        if not self.enabled:
            return
        with self._lock:
            state, state_age = self._state, time.monotonic() - self._state_wall_time
        if state is None:
            return
        if state_age > self._state_timeout:
            self.stale_ticks += 1
            self.get_logger().warning(f"state is {state_age:.2f} s old: holding the last command",
                                      throttle_duration_sec=LOG_THROTTLE)
            self._publish(None)
            return
        if self.planner == "policy":
            self._publish(self._policy_action(state[1], fallback=False))
            return
        if self._worker is None:
            self._publish(self._explore())
            return
        plan = self._worker.latest_plan()
        now = self._now(state[0])
        action = None if plan is None else plan.action_at(now)
        if action is None:
            self.missed_deadlines += 1
            if now - state[0] > CLOCK_MISMATCH:
                self.get_logger().error(
                    f"the newest state is stamped {now - state[0]:.1f} s behind this node's clock: every plan is "
                    "out of date on arrival (a simulator's stamps need use_sim_time: true)",
                    throttle_duration_sec=10 * LOG_THROTTLE)
            action = self._policy_action(state[1], fallback=True)
        self._publish(action)

    def _now(self, newest_stamp: float) -> float:
        """The current time on the clock of the robot's stamps (simulated time under use_sim_time)."""
        return max(self.get_clock().now().nanoseconds * 1e-9, newest_stamp)

    def _publish(self, action: np.ndarray | None) -> None:
        """Publishes ``action`` through the safety filter; None re-publishes the last command (hold)."""
        with self._lock:
            if self._safety is None:
                return
            command = self._safety.previous if action is None else self._safety(action).command
        if self._command_interface == "commands":
            self._commands.publish(command_message(command))
        else:
            trajectory = JointTrajectory(joint_names=list(self.task.actuator_names))
            trajectory.points = [JointTrajectoryPoint(positions=command.tolist())]
            self._commands.publish(trajectory)

    # ------------------------------------------------------------------------------------------ models
    def _on_model_update(self, msg: ModelUpdate) -> None:
        try:
            model = self._validated_model(msg)
        except ValueError as error:
            self._reject("model_update", error)
            return
        version = int(msg.version)
        self._newest_model_version = max(self._newest_model_version, version)
        if self._worker is None:
            self._start_planning(model, version)
        else:
            self._worker.between_plans(lambda: self._swap(model, version))
        if self._awaiting_model is not None and version > self._awaiting_model[1]:
            self._stop_waiting_for_model()

    def _validated_model(self, msg: ModelUpdate) -> DynamicsModel:
        payload = ModelPayload(msg.kind, msg.metadata_json, bytes(msg.weights), msg.sha256)
        model = model_from_payload(payload)
        if not isinstance(model, DynamicsModel):
            raise ValueError(f"a {msg.kind!r} model is not a dynamics model")
        if (model.state_dim, model.action_dim) != (self.task.state_dim, self.task.action_dim):
            raise ValueError(f"the model maps (S={model.state_dim}, A={model.action_dim}); task "
                             f"{self.task.name} has (S={self.task.state_dim}, A={self.task.action_dim})")
        return model

    def _start_planning(self, model: DynamicsModel, version: int) -> None:
        low, high = self.task.action_bounds
        with self._lock:
            policy = self._policy if self.mpc_config.optimizer.startswith("poplin") else None
        self._mpc = MPC(model, self.task.reward, low, high, self.mpc_config, termination_fn=self.task.terminated,
                        policy=policy, seed=offset_seed(self.mpc_config.seed, self._episodes_ended))
        self.model_version = version
        self._worker = PlannerWorker(self._plan, self._dt, on_plan=self._after_plan, on_error=self._on_planner_error)
        if self.mode == "realtime":
            self._worker.start()
            with self._lock:
                state = self._state
            if state is not None:
                self._worker.submit_state(*state)
        self.get_logger().info(f"planning with model version {version} ({model.kind})")

    def _start_from_model_dir(self, path: str) -> None:
        """Plans with the newest model in ``path`` from the start; raises ValueError for an unusable one."""
        from mbrl_ros.offline import load_model_directory

        model, version = load_model_directory(path)
        if (model.state_dim, model.action_dim) != (self.task.state_dim, self.task.action_dim):
            raise ValueError(f"the model in {path} maps (S={model.state_dim}, A={model.action_dim}); task "
                             f"{self.task.name} has (S={self.task.state_dim}, A={self.task.action_dim})")
        self._start_planning(model, version)

    def _swap(self, model: DynamicsModel, version: int) -> None:
        self._mpc.set_model(model)  # raises for an unfit model: the worker reports it and keeps the old one
        self.model_version = version
        self.get_logger().info(f"swapped in model version {version}")

    # ------------------------------------------------------------------------------------------ policies
    def _init_policy(self, value: dict[str, Any]) -> None:
        if value["planner"] not in PLANNERS:
            raise ValueError(f"parameter planner must be one of {PLANNERS}, got {value['planner']!r}")
        self.planner, self._policy_fallback = value["planner"], bool(value["policy_fallback"])
        self._policy: PolicyNetwork | None = None
        self.policy_version, self.policy_actions = 0, 0  # policy_actions: commands the policy gave

    def _on_policy_update(self, msg: ModelUpdate) -> None:
        try:
            policy = model_from_payload(ModelPayload(msg.kind, msg.metadata_json, bytes(msg.weights), msg.sha256),
                                        expected_kind="policy")
            low, high = (torch.as_tensor(b, dtype=torch.float32) for b in self.task.action_bounds)
            if (policy.state_dim, policy.action_dim) != (self.task.state_dim, self.task.action_dim):
                raise ValueError(f"the policy maps {policy.state_dim} states to {policy.action_dim} actions; task "
                                 f"{self.task.name} has {self.task.state_dim} and {self.task.action_dim}")
            if not (torch.allclose(policy.action_low, low) and torch.allclose(policy.action_high, high)):
                raise ValueError(f"the policy's action bounds differ from the task's {low.tolist()}, {high.tolist()}")
            if not all(torch.isfinite(t).all() for t in (*policy.parameters(), *policy.buffers())):
                raise ValueError("the policy has non-finite parameters")
        except ValueError as error:  # ModelFormatError included
            self._reject("policy_update", error)
            return
        with self._lock:
            self._policy, self.policy_version = policy, int(msg.version)
        if self._worker is not None and isinstance(self._mpc.optimizer, PolicyGuidedCEM):
            self._worker.between_plans(lambda: self._mpc.optimizer.set_policy(policy))
        self.get_logger().info(f"policy version {msg.version} received")

    def _policy_action(self, state: np.ndarray, fallback: bool) -> np.ndarray | None:
        """The policy's action at ``state``; without a policy: exploration, or None (hold) for a fallback."""
        with self._lock:
            policy = self._policy
        if policy is None or (fallback and not self._policy_fallback):
            return None if fallback else self._explore()
        self.policy_actions += 1
        return np.asarray(policy.act(state.tolist()), dtype=np.float64)

    def _on_goal(self, msg: JointState) -> None:
        if len(msg.name) != len(msg.position):
            self._reject("goal", MessageError(f"{len(msg.name)} names but {len(msg.position)} positions"))
            return
        goal = dict(zip(msg.name, msg.position, strict=True))

        def set_goal() -> None:
            try:
                self.task.set_goal(goal)
            except ValueError as error:
                self._reject("goal", error)
            else:
                self.get_logger().info(f"new goal posture for {sorted(goal)}")

        if self._worker is None or self.mode == "lockstep":
            set_goal()  # nothing plans concurrently: lockstep plans in this thread
        else:
            self._worker.between_plans(set_goal)  # a plan never sees half a goal

    # ------------------------------------------------------------------------------------------ services
    def _on_episode_end(self, msg: EpisodeSummary) -> None:
        self._episodes_ended += 1
        if self._mpc is not None and self._worker is not None:
            seed = offset_seed(self.mpc_config.seed, self._episodes_ended)
            self._worker.between_plans(lambda: self._mpc.reset(seed))  # seeded: a lockstep run repeats
            if isinstance(self._mpc.optimizer, PolicyGuidedCEM):
                self._worker.between_plans(self._mpc.optimizer.distill)
        if self.mode == "lockstep" and self.planner == "mpc" and self._episode_model_wait > 0:
            self._stop_waiting_for_model()  # a previous wait, if any, is over: the new one starts now
            self._awaiting_model = (stamp_to_seconds(msg.header.stamp), self._newest_model_version)
            steady = Clock(clock_type=ClockType.STEADY_TIME)
            self._model_wait_timer = self.create_timer(self._episode_model_wait, self._on_model_wait_timeout,
                                                       clock=steady)

    def _on_model_wait_timeout(self) -> None:
        self.get_logger().warning(
            f"no model newer than version {self._newest_model_version} within {self._episode_model_wait} s of the "
            "episode end: going on without it")
        self._stop_waiting_for_model()

    def _stop_waiting_for_model(self) -> None:
        """Ends an episode-end model wait, if one is on, and answers the state held meanwhile."""
        if self._model_wait_timer is not None:
            self.destroy_timer(self._model_wait_timer)
            self._model_wait_timer = None
        self._awaiting_model = None
        held, self._held = self._held, None
        if held is not None:
            self._act_lockstep(*held)

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self._lock:
            if request.data and not self.enabled and self._safety is not None and self._joint_positions:
                self._safety.reset(self.task.hold_command(self._joint_positions))  # resume from where it is now
            self.enabled = bool(request.data)
        response.success, response.message = True, "enabled" if self.enabled else "disabled"
        self.get_logger().info(f"commands {response.message}")
        return response

    def _publish_diagnostics(self) -> None:
        with self._lock:
            state_age = time.monotonic() - self._state_wall_time
        latencies = np.array(self._latencies) * 1e3
        now = time.monotonic()
        replans = sum(1 for t in self._plans_at if now - t <= 5.0) / 5.0
        stale = state_age > self._state_timeout
        level = DiagnosticStatus.WARN if stale or not self.enabled else DiagnosticStatus.OK
        message = "state stale" if stale else "disabled" if not self.enabled else (
            "exploring (no model yet)" if self._worker is None else "planning")
        values = {
            "enabled": self.enabled, "model_version": self.model_version, "replan_rate_hz": replans,
            "plan_latency_p50_ms": np.percentile(latencies, 50) if len(latencies) else float("nan"),
            "plan_latency_p99_ms": np.percentile(latencies, 99) if len(latencies) else float("nan"),
            "missed_deadlines": self.missed_deadlines, "ticks": self.ticks, "stale_ticks": self.stale_ticks,
            "state_age_s": state_age, "rejected_messages": sum(self.rejected.values()),
            "policy_version": self.policy_version, "policy_actions": self.policy_actions,
        }
        self._diagnostics.publish(diagnostic_array(self.get_clock().now().to_msg(), level,
                                                   f"{self.get_name()}: planner", message, self.task.name, values))

    def destroy_node(self) -> None:
        # _worker is absent when the constructor refused its parameters
        if getattr(self, "_worker", None) is not None and self.mode == "realtime":
            self._worker.stop()  # never leave the planner thread inside torch at exit
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(MpcController, "mpc_controller", __doc__.split("\n")[0], argv)
