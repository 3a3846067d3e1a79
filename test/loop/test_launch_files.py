"""The launch files, checked structurally (``launch`` and ``launch_ros`` are not installable here).

Each file's ``generate_launch_description()`` runs against small stand-ins of the launch API that only record
what they are given; the recorded nodes are then resolved with the launch arguments and checked against the
installed package: the executables exist, the parameter files exist and are ``ros__parameters`` files, and
every remapped topic is one the real node subscribes or publishes.
"""

import importlib.util
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from rclpy.parameter import Parameter

from mbrl_ros.nodes.dynamics_learner import DynamicsLearner
from mbrl_ros.nodes.mpc_controller import MpcController
from mbrl_ros.nodes.mujoco_bridge import MujocoBridge
from mbrl_ros.resources import package_share

LAUNCH_DIR = package_share() / "launch"
NODE_CLASSES = {"mujoco_bridge": MujocoBridge, "dynamics_learner": DynamicsLearner, "mpc_controller": MpcController}


@dataclass
class Recorded:
    """A launch API object: its class name, positional and keyword arguments."""

    kind: str
    args: tuple
    kwargs: dict[str, Any] = field(default_factory=dict)


def recorder(kind: str) -> type:
    return type(kind, (), {"__new__": lambda cls, *args, **kwargs: Recorded(kind, args, kwargs)})


@pytest.fixture
def launch_api(monkeypatch):
    """Stand-in modules for the parts of launch / launch_ros the files use, recording every call."""
    names = {
        "launch": ["LaunchDescription"],
        "launch.actions": ["DeclareLaunchArgument"],
        "launch.substitutions": ["LaunchConfiguration", "PathJoinSubstitution"],
        "launch_ros.actions": ["Node"],
        "launch_ros.parameter_descriptions": ["ParameterValue"],
        "launch_ros.substitutions": ["FindPackageShare"],
    }
    for module_name, classes in names.items():
        module = types.ModuleType(module_name)
        for name in classes:
            setattr(module, name, recorder(name))
        monkeypatch.setitem(sys.modules, module_name, module)
    monkeypatch.setitem(sys.modules, "launch_ros", types.ModuleType("launch_ros"))


def load(path: Path) -> Recorded:
    spec = importlib.util.spec_from_file_location(f"launch_file_{path.stem.replace('.', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def resolve(value: Any, arguments: dict[str, str]) -> Any:
    """The value a substitution takes for these launch arguments (strings, like launch's own)."""
    if isinstance(value, list):
        return "".join(str(resolve(part, arguments)) for part in value)
    if isinstance(value, dict):
        return {key: resolve(item, arguments) for key, item in value.items()}
    if not isinstance(value, Recorded):
        return value
    if value.kind == "LaunchConfiguration":
        return arguments[value.args[0]]
    if value.kind == "PathJoinSubstitution":
        return str(Path(*[resolve(part, arguments) for part in value.args[0]]))
    if value.kind == "FindPackageShare":
        assert value.args[0] == "mbrl_ros"
        return str(package_share())
    if value.kind == "ParameterValue":
        text = resolve(value.args[0], arguments)
        return {"true": True, "false": False}[text] if value.kwargs.get("value_type") is bool else text
    raise AssertionError(f"unexpected {value.kind}")


def launch_arguments(description: Recorded, given: dict[str, str]) -> dict[str, str]:
    """Every declared argument's value: given, else its default (resolved in order); undeclared ones refused."""
    declared = [e for e in description.args[0] if e.kind == "DeclareLaunchArgument"]
    assert set(given) <= {d.args[0] for d in declared}, "an argument the file does not declare"
    values: dict[str, str] = {}
    for declaration in declared:
        name = declaration.args[0]
        assert declaration.kwargs.get("description"), f"argument {name} has no description"
        if name in given:
            values[name] = given[name]
        else:
            assert "default_value" in declaration.kwargs, f"required argument {name} was not given"
            values[name] = resolve(declaration.kwargs["default_value"], values)
        choices = declaration.kwargs.get("choices")
        assert choices is None or values[name] in choices
    return values


def node_topics(node) -> set[str]:
    return {s.topic_name for s in node.subscriptions} | {p.topic_name for p in node.publishers}


CASES = [
    ("sim.launch.py", {}, {"mujoco_bridge", "dynamics_learner", "mpc_controller"}),
    ("sim.launch.py", {"config": "cartpole_swingup", "mode": "realtime"}, {"mujoco_bridge", "dynamics_learner",
                                                                            "mpc_controller"}),
    ("hardware.launch.py", {"config": "allegro_hand_posture", "joint_states": "/hand/joint_states"},
     {"dynamics_learner", "mpc_controller"}),
    ("learner.launch.py", {}, {"dynamics_learner"}),
]


@pytest.mark.parametrize("launch_file, given, expected_nodes", CASES)
def test_launch_files_start_installed_nodes_with_existing_files_and_real_topics(launch_api, ros_executor, tmp_path,
                                                                               launch_file, given, expected_nodes):
    description = load(LAUNCH_DIR / launch_file)
    arguments = launch_arguments(description, given)
    nodes = [e for e in description.args[0] if e.kind == "Node"]
    assert {n.kwargs["name"] for n in nodes} == expected_nodes
    for launched in nodes:
        kwargs = launched.kwargs
        assert kwargs["package"] == "mbrl_ros"
        executable = Path(sys.prefix) / "lib" / "mbrl_ros" / kwargs["executable"]
        assert executable.is_file(), f"{executable} is not installed"
        parameter_files, overrides = [], {}
        for entry in kwargs["parameters"]:
            value = resolve(entry, arguments)
            if isinstance(value, dict):
                overrides.update(value)
            else:
                parameter_files.append(Path(value))
        for path in parameter_files:
            assert path.is_file(), f"{launch_file}: no parameter file {path}"
            content = yaml.safe_load(path.read_text())
            assert all("ros__parameters" in section for section in content.values())
        if given.get("mode"):
            assert overrides["mode"] == given["mode"]

        # The real node, built with the same files and overrides (data in tmp_path, so nothing is resumed).
        arguments_list = [part for path in parameter_files for part in ("--params-file", str(path))]
        if kwargs["name"] == "dynamics_learner":
            overrides["data_dir"] = str(tmp_path / "learner")
        node = NODE_CLASSES[kwargs["executable"]](
            context=ros_executor.context, cli_args=["--ros-args", *arguments_list],
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
        try:
            topics = node_topics(node)
            for source, target in kwargs.get("remappings", []):
                assert source in topics, f"{launch_file}: {kwargs['name']} has no topic {source} to remap"
                assert resolve(target, arguments).startswith("/")
        finally:
            node.destroy_node()


def test_every_config_is_a_ros_parameters_file_naming_known_nodes():
    configs = sorted((package_share() / "config").glob("*.yaml"))
    assert {"shadow_hand_cube", "cartpole_swingup", "allegro_hand_posture"} <= {c.stem for c in configs}
    for config in configs:
        content = yaml.safe_load(config.read_text())
        assert set(content) <= {"/**", *NODE_CLASSES}, f"{config.name}: unknown node sections"
        assert all(set(section) == {"ros__parameters"} for section in content.values()), config.name

