"""Model kinds by name, so that a saved or published model names its class and the loader stays generic.

A kind is a ``torch.nn.Module`` subclass with a class attribute ``kind`` and a method ``architecture()`` that
returns its constructor's keyword arguments (JSON-able: int, float, str, bool, lists of them). Registering it
is all a new kind needs::

    @register_model_kind
    class PolicyNetwork(nn.Module):
        kind = "policy"
        ...
"""

from typing import TypeVar

from torch import nn

ModuleType = TypeVar("ModuleType", bound=type[nn.Module])

_KINDS: dict[str, type[nn.Module]] = {}


def register_model_kind(cls: ModuleType) -> ModuleType:
    """Class decorator: makes ``cls`` loadable under the name ``cls.kind``."""
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"{cls.__name__} needs a non-empty class attribute 'kind' to be registered")
    if not callable(getattr(cls, "architecture", None)):
        raise TypeError(f"{cls.__name__} needs an architecture() method to be registered")
    if _KINDS.get(kind, cls) is not cls:
        raise ValueError(f"model kind {kind!r} is already registered by {_KINDS[kind].__name__}")
    _KINDS[kind] = cls
    return cls


def model_class(kind: str) -> type[nn.Module]:
    """The class registered as ``kind``; KeyError naming the known kinds if there is none."""
    if kind not in _KINDS:
        raise KeyError(f"unknown model kind {kind!r}; known kinds: {sorted(_KINDS)}")
    return _KINDS[kind]


def registered_kinds() -> list[str]:
    """Names of all registered kinds, sorted."""
    return sorted(_KINDS)
