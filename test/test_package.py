"""The ROS package as installed: package.xml, its dependencies, executables and share/ files."""

import ast
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

from support import REPO_ROOT

PREFIX = Path(sys.prefix)
PACKAGE = parse_package(str(REPO_ROOT / "package.xml"))

# package.xml keys of the third-party Python modules the code may import; ROS packages are named as imported.
PYTHON_DEPENDENCY_KEYS = {
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "yaml": "python3-yaml",
    "torch": "python3-torch",
    "mujoco": "python3-mujoco-pip",
    "tqdm": "python3-tqdm",
    "matplotlib": "python3-matplotlib",
    "safetensors": "python3-safetensors-pip",
    "gymnasium": "python3-gymnasium-pip",
    "gymnasium_robotics": "python3-gymnasium-robotics-pip",
    "rosbags": "python3-rosbags-pip",
}
# Needed by the generated messages rather than imported by hand.
MESSAGE_GENERATION_KEYS = {"rosidl_default_runtime", "builtin_interfaces", "std_msgs"}
# Installed for the MJCF assets they ship (found with importlib.util.find_spec), never imported.
ASSET_DEPENDENCY_KEYS = {"python3-gymnasium-robotics-pip"}


def imported_top_level_modules() -> set[str]:
    modules = set()
    for source in (REPO_ROOT / "mbrl_ros").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"mbrl_ros"}


def test_package_xml_is_valid_and_names_the_cmake_project():
    PACKAGE.validate()
    assert PACKAGE.name == "mbrl_ros"
    assert PACKAGE.get_build_type() == "ament_cmake"
    cmake = (REPO_ROOT / "CMakeLists.txt").read_text()
    assert f"project({PACKAGE.name} " in cmake
    assert "rosidl_interface_packages" in [group.name for group in PACKAGE.member_of_groups]


def test_declared_runtime_dependencies_match_the_imports():
    imported = imported_top_level_modules()
    unknown = {module for module in imported if module not in PYTHON_DEPENDENCY_KEYS and not _is_ros_package(module)}
    assert not unknown, f"imports with no package.xml key mapping in this test: {sorted(unknown)}"
    needed = {PYTHON_DEPENDENCY_KEYS.get(module, module) for module in imported}
    needed |= MESSAGE_GENERATION_KEYS | ASSET_DEPENDENCY_KEYS
    declared = {dep.name for dep in PACKAGE.exec_depends}
    assert needed - declared == set(), "imported but not declared in package.xml"
    assert declared - needed == set(), "declared in package.xml but never imported"


def _is_ros_package(module: str) -> bool:
    return (PREFIX / "share" / module / "package.xml").is_file()


def _installed_executables() -> list[Path]:
    nodes = PREFIX / "lib" / "mbrl_ros"
    return (sorted(nodes.iterdir()) if nodes.is_dir() else []) + [PREFIX / "bin" / "mbrl-ros"]


@pytest.mark.parametrize("executable", _installed_executables(), ids=lambda path: path.name)
def test_every_executable_starts_and_prints_its_help(executable):
    result = subprocess.run([str(executable), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout.lower()


def test_launch_and_config_files_are_installed_to_share():
    share = PREFIX / "share" / "mbrl_ros"
    sources = sorted(
        path.relative_to(REPO_ROOT)
        for folder in ("launch", "config")
        if (REPO_ROOT / folder).is_dir()
        for path in (REPO_ROOT / folder).rglob("*")
        if path.is_file()
    )
    assert sources, "no launch or config files"
    for relative in sources:
        installed = share / relative
        assert installed.is_file(), f"{relative} is not installed under {share}"
        assert installed.read_bytes() == (REPO_ROOT / relative).read_bytes()
    assert (share / "package.xml").is_file()
    assert (PREFIX / "share" / "ament_index" / "resource_index" / "packages" / "mbrl_ros").is_file()


def test_generated_messages_are_installed_with_the_library():
    package_dir = Path(sysconfig.get_paths()["purelib"]) / "mbrl_ros"
    assert (package_dir / "msg" / "__init__.py").is_file()
    assert list(package_dir.glob("mbrl_ros_s__rosidl_typesupport_fastrtps_c*.so")), "no Fast DDS typesupport"
    import mbrl_ros
    import mbrl_ros.msg

    assert Path(mbrl_ros.__file__).parent == package_dir, "the generated __init__.py shadows the library's"
    assert hasattr(mbrl_ros, "__version__")
    assert {"Transition", "ModelUpdate", "PlannerStatus"} <= set(dir(mbrl_ros.msg))
