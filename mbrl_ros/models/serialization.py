"""Models to and from bytes (the ``ModelUpdate`` message payload) and directories, without ever running code.

A payload is ``(kind, metadata_json, weights, sha256)``, the four fields of ``mbrl_ros/msg/ModelUpdate``:
``weights`` is a safetensors file (raw tensors behind a JSON header; nothing in it can execute), ``kind``
names a class registered with :func:`~mbrl_ros.models.registry.register_model_kind`, and ``metadata_json``
holds the architecture (that class's constructor arguments), the expected tensors and free-form ``extra``
information (e.g. the training run). Loading checks, in order: sizes, the SHA-256 of the weights, the
metadata, the architecture against the constructor's signature, the safetensors header, then every tensor's
name, dtype, shape and finiteness against a model built from the architecture on the ``meta`` device (so a
forged architecture allocates nothing), and only then builds the model and loads the tensors.
"""

import hashlib
import hmac
import inspect
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from mbrl_ros.models.registry import model_class
from mbrl_ros.settings import fits_type

FORMAT_VERSION = 1
MAX_WEIGHT_BYTES = 1 << 30  # (bytes) payloads above this are refused before hashing
MAX_METADATA_CHARS = 1 << 20
WEIGHTS_FILE = "weights.safetensors"
DESCRIPTION_FILE = "model.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_JSON_SCALARS = (int, float, str, bool)


class ModelFormatError(ValueError):
    """A payload, file or directory that is not a valid model; the message says what is wrong."""


@dataclass(frozen=True)
class ModelPayload:
    """The fields of a ``ModelUpdate`` message that carry a model (header and version are the node's)."""

    kind: str
    metadata_json: str
    weights: bytes
    sha256: str


def model_to_payload(model: nn.Module, extra: dict[str, Any] | None = None) -> ModelPayload:
    """Serializes ``model`` (a registered kind) with its architecture and ``extra`` (JSON-able) information."""
    tensors = {name: value.detach().to("cpu").contiguous() for name, value in model.state_dict().items()}
    metadata = {
        "format_version": FORMAT_VERSION,
        "kind": model.kind,
        "architecture": model.architecture(),
        "tensors": {name: {"dtype": str(value.dtype).removeprefix("torch."), "shape": list(value.shape)}
                    for name, value in tensors.items()},
        "extra": extra or {},
    }
    model_class(model.kind)  # fails early for a class that was never registered
    weights = save_safetensors(tensors)
    return ModelPayload(model.kind, json.dumps(metadata, allow_nan=False), weights, hashlib.sha256(weights).hexdigest())


def model_from_payload(payload: ModelPayload, expected_kind: str | None = None) -> nn.Module:
    """Rebuilds the model a payload describes, on the CPU, in eval mode.

    Args:
        payload: as produced by :func:`model_to_payload` (or received in a ``ModelUpdate``).
        expected_kind: if given, any other kind is refused.

    Raises:
        ModelFormatError: anything that is not exactly a valid model of a registered kind.
    """
    kind, metadata_json, weights, sha256 = payload.kind, payload.metadata_json, payload.weights, payload.sha256
    if not isinstance(weights, bytes | bytearray | memoryview):
        raise ModelFormatError(f"weights must be bytes, got {type(weights).__name__}")
    weights = bytes(weights)
    if len(weights) > MAX_WEIGHT_BYTES:
        raise ModelFormatError(f"weights are {len(weights)} bytes, more than the limit of {MAX_WEIGHT_BYTES}")
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise ModelFormatError("sha256 must be 64 lowercase hexadecimal digits")
    if not hmac.compare_digest(hashlib.sha256(weights).hexdigest(), sha256):
        raise ModelFormatError("the weights do not match their sha256: corrupted or truncated payload")
    if expected_kind is not None and kind != expected_kind:
        raise ModelFormatError(f"expected a model of kind {expected_kind!r}, got {kind!r}")
    metadata = _parse_metadata(kind, metadata_json)
    cls = model_class(kind)
    architecture = _checked_architecture(cls, metadata["architecture"])
    try:
        with torch.device("meta"):
            expected = cls(**architecture).state_dict()
    except (ValueError, TypeError, RuntimeError) as error:  # RuntimeError: sizes that overflow
        raise ModelFormatError(f"{cls.__name__} rejects the architecture {architecture}: {error}") from error
    try:
        tensors = load_safetensors(weights)
    except SafetensorError as error:
        raise ModelFormatError(f"the weights are not a valid safetensors file: {error}") from error
    _check_tensors(tensors, expected)
    model = cls(**architecture)
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def _parse_metadata(kind: str, metadata_json: str) -> dict[str, Any]:
    if not isinstance(kind, str):
        raise ModelFormatError(f"kind must be a string, got {type(kind).__name__}")
    if not isinstance(metadata_json, str) or len(metadata_json) > MAX_METADATA_CHARS:
        raise ModelFormatError(f"metadata must be a JSON string of at most {MAX_METADATA_CHARS} characters")
    try:
        metadata = json.loads(metadata_json)
    except json.JSONDecodeError as error:
        raise ModelFormatError(f"metadata is not valid JSON: {error}") from error
    if not isinstance(metadata, dict):
        raise ModelFormatError("metadata must be a JSON object")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(f"unsupported format_version {metadata.get('format_version')!r} "
                               f"(this build reads {FORMAT_VERSION})")
    if metadata.get("kind") != kind:
        raise ModelFormatError(f"the metadata describes kind {metadata.get('kind')!r}, the payload says {kind!r}")
    try:
        model_class(kind)
    except KeyError as error:
        raise ModelFormatError(error.args[0]) from error
    if not isinstance(metadata.get("architecture"), dict):
        raise ModelFormatError("metadata has no 'architecture' object")
    return metadata


def _checked_architecture(cls: type[nn.Module], architecture: dict[str, Any]) -> dict[str, Any]:
    """The architecture if it names exactly the constructor's arguments, with values of the annotated types."""
    parameters = {name: parameter for name, parameter in inspect.signature(cls).parameters.items()}
    unknown = set(architecture) - set(parameters)
    missing = {name for name, p in parameters.items() if p.default is inspect.Parameter.empty} - set(architecture)
    if unknown or missing:
        raise ModelFormatError(f"architecture for {cls.__name__}: unknown arguments {sorted(unknown)}, "
                               f"missing arguments {sorted(missing)}")
    for name, value in architecture.items():
        annotation = parameters[name].annotation
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, _JSON_SCALARS) for v in values):
            raise ModelFormatError(f"architecture argument {name} = {value!r} is not a JSON scalar or list of them")
        if annotation in _JSON_SCALARS and not fits_type(annotation, value):
            raise ModelFormatError(f"architecture argument {name} = {value!r} is not of type {annotation.__name__}")
    return architecture


def _check_tensors(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    if set(tensors) != set(expected):
        raise ModelFormatError(f"the weights hold the wrong tensors: missing {sorted(set(expected) - set(tensors))}, "
                               f"unexpected {sorted(set(tensors) - set(expected))}")
    for name, reference in expected.items():
        tensor = tensors[name]
        if tensor.dtype != reference.dtype or tensor.shape != reference.shape:
            raise ModelFormatError(f"tensor {name} is {tensor.dtype} {tuple(tensor.shape)}, the architecture needs "
                                   f"{reference.dtype} {tuple(reference.shape)}")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFormatError(f"tensor {name} holds NaN or inf")


def save_model(model: nn.Module, directory: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Writes ``model`` to ``directory`` (created): weights.safetensors and model.json, each replaced atomically.

    Returns:
        the directory.
    """
    payload = model_to_payload(model, extra)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    description = {"kind": payload.kind, "sha256": payload.sha256, "metadata": json.loads(payload.metadata_json)}
    _write_atomically(directory / WEIGHTS_FILE, payload.weights)
    _write_atomically(directory / DESCRIPTION_FILE, json.dumps(description, indent=1).encode())
    return directory


def load_model(directory: str | os.PathLike, expected_kind: str | None = None) -> nn.Module:
    """Reads a model written by :func:`save_model`, with every check of :func:`model_from_payload`.

    Raises:
        ModelFormatError: missing or invalid files.
    """
    directory = Path(directory)
    try:
        description = json.loads((directory / DESCRIPTION_FILE).read_text())
        weights = (directory / WEIGHTS_FILE).read_bytes()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFormatError(f"{directory} does not hold a readable model: {error}") from error
    if not isinstance(description, dict) or not {"kind", "sha256", "metadata"} <= set(description):
        raise ModelFormatError(f"{directory / DESCRIPTION_FILE} must be an object with kind, sha256 and metadata")
    metadata_json = json.dumps(description["metadata"])
    return model_from_payload(ModelPayload(description["kind"], metadata_json, weights, description["sha256"]),
                              expected_kind)


def _write_atomically(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".tmp-{path.name}")
    with open(temporary, "wb") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
