"""Settings read from YAML or ROS parameters into dataclasses, each value checked against its field's type.

ROS-free: the nodes, the offline tools and the library (``MPCConfig.from_dict``) share it, so a wrong setting
reads the same wherever it is given.
"""

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

NULL_SPELLINGS = ("", "~", "null", "none", "None")  # how a YAML null reaches a node: ROS parameters have no null


def dataclass_from_dict(cls: type, values: Mapping[str, Any], what: str) -> Any:
    """``cls(**values)``, every value checked against its field's annotation.

    Args:
        cls: a dataclass.
        values: setting name -> value (a YAML section, or a node's parameters under one prefix).
        what: the section's name in messages ("trainer", "MPC", ...).

    Raises:
        ValueError: an unknown key or a value of the wrong type, naming the setting; or whatever ``cls`` refuses.
            A field that may be None takes ``null`` (any of :data:`NULL_SPELLINGS`) for None.
    """
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {what} setting(s) {unknown}; the settings are {sorted(known)}")
    hints = typing.get_type_hints(cls)
    checked = {}
    for name, value in values.items():
        annotation = hints[name]
        if fits_type(annotation, None) and isinstance(value, str) and value in NULL_SPELLINGS:
            value = None
        if not fits_type(annotation, value):
            raise ValueError(f"{what} setting {name} must be {_describe(annotation)}, got {value!r}")
        checked[name] = value
    return cls(**checked)


def is_integer(value: Any) -> bool:
    """Whether ``value`` is a Python int and not a bool (YAML's ``true`` is no count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Whether ``value`` is a Python int or float and not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def fits_type(annotation: Any, value: Any) -> bool:
    """Whether ``value`` fits the type ``annotation`` (an int fits a float; a bool fits neither).

    Parameterised generics (``Mapping[str, Any]``, ``Sequence[int]``) are left to the dataclass's own checks."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(fits_type(option, value) for option in typing.get_args(annotation))
    if annotation is Any:
        return True
    if annotation is type(None):
        return value is None
    if typing.get_origin(annotation) in (list, tuple):
        return isinstance(value, list | tuple)
    if annotation is float:
        return is_number(value)
    if annotation is int:
        return is_integer(value)
    return not isinstance(annotation, type) or isinstance(value, annotation)


def _describe(annotation: Any) -> str:
    return "null" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))
