"""The repository builds as a ROS 2 workspace package with `colcon build` (colcon from PyPI, the venv's ROS 2),
and what colcon installs works: the library and messages import from the workspace, and a message published
from the workspace's install reaches this process over DDS."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO_ROOT, wait_for

VENV = Path(sys.prefix)
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv*", "build", "install", "log", "runs", "__pycache__", ".*_cache")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("colcon_ws")
    shutil.copytree(REPO_ROOT, root / "src" / "mbrl_ros", ignore=NOT_SOURCES)
    env = dict(os.environ, AMENT_PREFIX_PATH=str(VENV), CMAKE_PREFIX_PATH=str(VENV))
    result = subprocess.run(
        [str(VENV / "bin" / "colcon"), "build", "--event-handlers", "console_cohesion+",
         "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"],
        cwd=root, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return root


def workspace_shell(workspace: Path, command: str) -> list[str]:
    """``command`` in bash after sourcing the workspace's setup.bash, as a ROS 2 user with the venv active."""
    return ["bash", "-c", f"export PATH={VENV}/bin:$PATH && source {workspace}/install/setup.bash && {command}"]


def in_workspace(workspace: Path, command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(workspace_shell(workspace, command), cwd=workspace, **kwargs)


def test_colcon_discovers_and_installs_the_package(workspace):
    prefix = workspace / "install" / "mbrl_ros"
    assert (prefix / "share" / "mbrl_ros" / "package.xml").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "mbrl_ros").is_file()
    assert (prefix / "share" / "mbrl_ros" / "config" / "fastdds_localhost.xml").is_file()
    assert (prefix / "bin" / "mbrl-ros").is_file()


def test_library_and_messages_import_from_the_workspace_install(workspace):
    result = in_workspace(
        workspace,
        "python -c 'import mbrl_ros, mbrl_ros.msg as m; print(mbrl_ros.__file__); print(m.Transition.__module__)'",
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    library_file, transition_module = result.stdout.split()
    assert Path(library_file).is_relative_to(workspace / "install"), library_file
    assert transition_module == "mbrl_ros.msg._transition"


def test_message_from_the_workspace_install_reaches_this_process(workspace, ros_executor):
    import rclpy

    from mbrl_ros.msg import ModelUpdate

    sys.path.insert(0, str(REPO_ROOT / "test" / "scripts"))
    from publish_messages import LATCHED, expected_content

    received = []
    node = rclpy.create_node("workspace_receiver", context=ros_executor.context)
    node.create_subscription(ModelUpdate, "model_update", received.append, LATCHED)
    ros_executor.add_node(node)
    script = workspace / "src" / "mbrl_ros" / "test" / "scripts" / "publish_messages.py"
    publisher = subprocess.Popen(workspace_shell(workspace, f"exec python {script} 99"), cwd=workspace)
    try:
        assert wait_for(lambda: received, timeout=60), "nothing received from the workspace build"
    finally:
        publisher.terminate()
        publisher.wait(timeout=10)
    assert bytes(received[0].weights) == expected_content(99)["weights"]
