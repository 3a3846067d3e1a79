"""The installed learner and controller executables, each in its own process, exchange a model over DDS; the
learner, killed with SIGKILL, resumes from its data directory with its transitions and model version."""

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from mbrl_ros.msg import ModelUpdate, Transition
from mbrl_ros.tasks import make_task

from support import wait_for

QOS = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
EXECUTABLES = Path(sys.prefix) / "lib" / "mbrl_ros"
LEARNER_PARAMETERS = {
    "task": "cartpole_swingup", "model.kind": "mlp", "model.hidden_layers": 1, "model.hidden_units": 32,
    "trainer.max_epochs": 5, "trainer.batch_size": 64, "retrain.every_transitions": 0,
    "retrain.on_episode_end": False, "retrain.min_transitions": 50, "flush_interval": 0.1,
}
CONTROLLER_PARAMETERS = {"task": "cartpole_swingup", "mode": "realtime", "mpc.horizon": 5,
                         "mpc.optimizer": "random_shooting", "mpc.propagation": "deterministic"}


def start(executable: str, parameters: dict) -> subprocess.Popen:
    arguments = [f"{name}:={str(value).lower() if isinstance(value, bool) else value}"
                 for name, value in parameters.items()]
    return subprocess.Popen([str(EXECUTABLES / executable), "--ros-args",
                             *[part for argument in arguments for part in ("-p", argument)]])


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def diagnostics_value(messages: list[DiagnosticArray], node: str, key: str) -> str | None:
    """The newest value of ``key`` that ``node`` reported on /diagnostics."""
    for array in reversed(messages):
        for status in array.status:
            if status.name.startswith(node):
                return next((v.value for v in status.values if v.key == key), None)
    return None


def test_learner_and_controller_processes_exchange_a_model_and_a_killed_learner_resumes(ros_executor, tmp_path):
    task = make_task("cartpole_swingup")
    learner_parameters = {**LEARNER_PARAMETERS, "data_dir": str(tmp_path / "learner")}
    node = rclpy.create_node("test_operator", context=ros_executor.context)
    models, diagnostics = [], []
    node.create_subscription(ModelUpdate, "/model_update", models.append, LATCHED)
    node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, QOS)
    transitions = node.create_publisher(Transition, "/transitions", QOS)
    train = node.create_client(Trigger, "/dynamics_learner/train")
    ros_executor.add_node(node)

    learner = start("dynamics_learner", learner_parameters)
    controller = start("mpc_controller", CONTROLLER_PARAMETERS)
    try:
        assert wait_for(lambda: transitions.get_subscription_count() >= 1, timeout=30)
        rng = np.random.default_rng(0)
        for _ in range(200):
            state, action = rng.normal(size=4), rng.uniform(-3, 3, size=1)
            transitions.publish(Transition(state=state.tolist(), action=action.tolist(), reward=0.0,
                                           next_state=(state + 0.05 * np.r_[state[2:], action, action]).tolist(),
                                           dt=task.dt))
        assert wait_for(lambda: diagnostics_value(diagnostics, "dynamics_learner", "transitions") == "200",
                        timeout=20), diagnostics_value(diagnostics, "dynamics_learner", "transitions")
        assert train.wait_for_service(timeout_sec=20)
        assert train.call(Trigger.Request(), timeout_sec=20).success
        assert wait_for(lambda: models and models[-1].version == 1, timeout=60)
        assert wait_for(lambda: diagnostics_value(diagnostics, "mpc_controller", "model_version") == "1",
                        timeout=20), "the controller process did not take the learner's model"

        learner.send_signal(signal.SIGKILL)
        learner.wait(timeout=10)
        stored_weights = bytes(models[-1].weights)
        models.clear(), diagnostics.clear()
        learner = start("dynamics_learner", learner_parameters)
        assert wait_for(lambda: models, timeout=30), "the restarted learner did not republish its model"
        assert models[-1].version == 1 and bytes(models[-1].weights) == stored_weights
        assert wait_for(lambda: diagnostics_value(diagnostics, "dynamics_learner", "transitions") == "200",
                        timeout=20), diagnostics_value(diagnostics, "dynamics_learner", "transitions")
        assert train.wait_for_service(timeout_sec=20)
        assert train.call(Trigger.Request(), timeout_sec=20).success
        assert wait_for(lambda: models[-1].version == 2, timeout=60), "versions must go on increasing"
        assert wait_for(lambda: diagnostics_value(diagnostics, "mpc_controller", "model_version") == "2",
                        timeout=20)
    finally:
        stop(controller)
        stop(learner)
    assert controller.returncode == 0 and learner.returncode == 0, "both should shut down cleanly on Ctrl-C"
