"""Node parameters: flat ones declared with defaults, nested sections (``mpc.horizon``, ``trainer.*``) read as dicts.

Nodes are created with ``automatically_declare_parameters_from_overrides=True``, so whatever a parameter file
gives is declared; :func:`declare_defaults` declares the rest with their defaults, and :func:`section` turns
every parameter under a prefix into the nested mapping that the library's ``from_dict`` constructors
validate (unknown keys are reported there, with the valid ones).
"""

from collections.abc import Mapping
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node


def declare_defaults(node: Node, defaults: Mapping[str, tuple[Any, str]]) -> dict[str, Any]:
    """Declares each ``name: (default, description)`` not given by a parameter file; returns all values."""
    for name, (default, description) in defaults.items():
        if not node.has_parameter(name):
            node.declare_parameter(name, default, ParameterDescriptor(description=description))
    return {name: node.get_parameter(name).value for name in defaults}


def section(node: Node, prefix: str) -> dict[str, Any]:
    """Parameters named ``prefix.a.b`` as ``{"a": {"b": value}}`` (empty lists read as empty lists)."""
    tree: dict[str, Any] = {}
    for name, parameter in node.get_parameters_by_prefix(prefix).items():
        *parents, leaf = name.split(".")
        branch = tree
        for key in parents:
            branch = branch.setdefault(key, {})
        value = parameter.value
        branch[leaf] = list(value) if isinstance(value, list | tuple) or hasattr(value, "tolist") else value
    return tree
