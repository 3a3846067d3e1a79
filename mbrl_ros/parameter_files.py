"""Parameter files (``ros__parameters`` form) read without ROS: what a node gets from one, and the task it builds.

The launch files hand these files to the nodes (``--params-file``); ``mbrl-ros up``, the offline tools and the
benchmarks read the same files here, with ROS's rules: the ``/**`` section merged under the node's own, dotted keys
as nested sections.
"""

import os
from pathlib import Path
from typing import Any

import yaml

from mbrl_ros.tasks import Task, make_task


def node_parameters(config: dict[str, Any], node: str) -> dict[str, Any]:
    """The parameters a node named ``node`` gets from a parsed parameter file (``/**`` merged under its own)."""
    merged: dict[str, Any] = {}
    for key in ("/**", node, f"/{node}"):
        section = config.get(key)
        if section is None:
            continue
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters", {}), dict):
            raise ValueError(f"section {key!r} must be a mapping with a 'ros__parameters' mapping")
        merged.update(_nested(section.get("ros__parameters") or {}))
    return merged


def node_task(parameters: dict[str, Any]) -> Task:
    """The task a node's parameters (as :func:`node_parameters` gives them) build: ``task`` with its
    ``task_options``, as the nodes build it."""
    return make_task(str(parameters["task"]), **dict(parameters.get("task_options") or {}))


def read_parameter_file(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed parameter file at ``path`` (node names to ``ros__parameters`` mappings).

    Raises:
        ValueError: the file is unreadable, not YAML, or not a mapping.
    """
    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read the parameter file {path}: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not a parameter file (a mapping of node names to ros__parameters)")
    return config


def _nested(parameters: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys (``model.kind: ensemble``) as nested mappings, as ROS reads them."""
    tree: dict[str, Any] = {}
    for name, value in parameters.items():
        *parents, leaf = str(name).split(".")
        branch = tree
        for key in parents:
            branch = branch.setdefault(key, {})
        branch[leaf] = _nested(value) if isinstance(value, dict) else value
    return tree
