"""Models to bytes and directories and back: exact round trips; everything malformed rejected, no code run."""

import dataclasses
import hashlib
import json
import pickle

import pytest
import safetensors.torch
import torch

from mbrl_ros.models import (
    DeterministicMLP,
    ModelFormatError,
    ModelPayload,
    ProbabilisticEnsemble,
    load_model,
    model_from_payload,
    model_to_payload,
    save_model,
)


def trained_looking(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = ProbabilisticEnsemble(3, 2, ensemble_size=4, hidden_layers=2, hidden_units=8) if kind == "ensemble" \
        else DeterministicMLP(3, 2, hidden_layers=1, hidden_units=8, activation="tanh")
    model.refit_normalizers(torch.randn(50, 5) * 2 + 1, torch.randn(50, 3) * 0.1, preserve_function=False)
    if kind == "ensemble":
        model.set_elites([0, 2])
    return model


def assert_same_model(loaded: torch.nn.Module, original: torch.nn.Module) -> None:
    assert type(loaded) is type(original) and loaded.architecture() == original.architecture()
    original_state, loaded_state = original.state_dict(), loaded.state_dict()
    assert original_state.keys() == loaded_state.keys()
    for name, tensor in original_state.items():
        assert torch.equal(tensor, loaded_state[name]), name
    states, actions = torch.randn(6, 3), torch.randn(6, 2)
    with torch.no_grad():
        assert torch.equal(loaded.predict(states, actions)[0], original.predict(states, actions)[0])


def resigned(payload: ModelPayload, weights: bytes) -> ModelPayload:
    """The payload with other weights and their correct sha256 (what a careless or hostile sender produces)."""
    return dataclasses.replace(payload, weights=weights, sha256=hashlib.sha256(weights).hexdigest())


def with_metadata(payload: ModelPayload, change) -> ModelPayload:
    metadata = json.loads(payload.metadata_json)
    change(metadata)
    return dataclasses.replace(payload, metadata_json=json.dumps(metadata))


@pytest.mark.parametrize("kind", ["ensemble", "mlp"])
def test_bytes_round_trip_is_exact(kind):
    model = trained_looking(kind)
    payload = model_to_payload(model, extra={"epochs": 12})
    assert payload.kind == kind and len(payload.sha256) == 64
    assert json.loads(payload.metadata_json)["extra"] == {"epochs": 12}
    assert_same_model(model_from_payload(payload, expected_kind=kind), model)


@pytest.mark.parametrize("kind", ["ensemble", "mlp"])
def test_directory_round_trip_is_exact(tmp_path, kind):
    model = trained_looking(kind)
    save_model(model, tmp_path / "model")
    assert_same_model(load_model(tmp_path / "model"), model)
    save_model(trained_looking("mlp"), tmp_path / "model")  # overwriting replaces the model whole
    assert load_model(tmp_path / "model").kind == "mlp"


def test_truncated_weights_are_rejected():
    payload = model_to_payload(trained_looking("ensemble"))
    with pytest.raises(ModelFormatError, match="sha256"):
        model_from_payload(dataclasses.replace(payload, weights=payload.weights[:-100]))
    with pytest.raises(ModelFormatError, match="safetensors"):
        model_from_payload(resigned(payload, payload.weights[:-100]))


def test_corrupted_weights_are_rejected():
    payload = model_to_payload(trained_looking("ensemble"))
    corrupted = bytearray(payload.weights)
    corrupted[len(corrupted) // 2] ^= 0xFF
    with pytest.raises(ModelFormatError, match="sha256"):
        model_from_payload(dataclasses.replace(payload, weights=bytes(corrupted)))
    header = bytearray(payload.weights)
    header[8] = ord("x")  # the JSON header (after its 8-byte length) broken, sha256 recomputed
    with pytest.raises(ModelFormatError, match="safetensors"):
        model_from_payload(resigned(payload, bytes(header)))


def test_wrong_shapes_are_rejected():
    model = trained_looking("ensemble")
    payload = model_to_payload(model)
    tensors = dict(model.state_dict())
    tensors["network.layers.0.weight"] = torch.zeros(4, 5, 9)
    with pytest.raises(ModelFormatError, match=r"network\.layers\.0\.weight.*\(4, 5, 8\)"):
        model_from_payload(resigned(payload, safetensors.torch.save(tensors)))
    # metadata claiming a bigger network than the weights hold: caught before anything is allocated
    bigger = with_metadata(payload, lambda m: m["architecture"].update(hidden_units=10**5))
    with pytest.raises(ModelFormatError, match="the architecture needs"):
        model_from_payload(bigger)
    overflowing = with_metadata(payload, lambda m: m["architecture"].update(hidden_units=10**12))
    with pytest.raises(ModelFormatError, match="rejects the architecture"):
        model_from_payload(overflowing)


def test_missing_extra_and_wrongly_typed_tensors_are_rejected():
    model = trained_looking("mlp")
    payload = model_to_payload(model)
    tensors = dict(model.state_dict())
    del tensors["target_normalizer.std"]
    with pytest.raises(ModelFormatError, match="missing.*target_normalizer.std"):
        model_from_payload(resigned(payload, safetensors.torch.save(tensors)))
    tensors = {**model.state_dict(), "backdoor": torch.zeros(1)}
    with pytest.raises(ModelFormatError, match="unexpected.*backdoor"):
        model_from_payload(resigned(payload, safetensors.torch.save(tensors)))
    tensors = {name: value.double() if value.is_floating_point() else value
               for name, value in model.state_dict().items()}
    with pytest.raises(ModelFormatError, match="float64"):
        model_from_payload(resigned(payload, safetensors.torch.save(tensors)))


@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_non_finite_weights_are_rejected(poison):
    model = trained_looking("ensemble")
    tensors = dict(model.state_dict())
    tensors["network.layers.2.bias"] = tensors["network.layers.2.bias"].clone()
    tensors["network.layers.2.bias"][1, 0, 3] = poison
    with pytest.raises(ModelFormatError, match="NaN or inf"):
        model_from_payload(resigned(model_to_payload(model), safetensors.torch.save(tensors)))


class _WritesAFileWhenUnpickled:
    path = ""

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickled_payload_is_rejected_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    _WritesAFileWhenUnpickled.path = str(marker)
    pickled = pickle.dumps({"network.layers.0.weight": _WritesAFileWhenUnpickled()})
    payload = model_to_payload(trained_looking("ensemble"))
    with pytest.raises(ModelFormatError, match="safetensors"):
        model_from_payload(resigned(payload, pickled))
    buffer = pickle.dumps(trained_looking("ensemble").state_dict())  # even a pickled plain state dict
    with pytest.raises(ModelFormatError, match="safetensors"):
        model_from_payload(resigned(payload, buffer))
    (tmp_path / "model").mkdir()
    save_model(trained_looking("ensemble"), tmp_path / "model")
    (tmp_path / "model" / "weights.safetensors").write_bytes(pickled)
    with pytest.raises(ModelFormatError, match="sha256"):
        load_model(tmp_path / "model")
    assert not marker.exists(), "the pickle ran"


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(format_version=7), "format_version"),
    (lambda m: m.update(kind="mlp"), "kind"),
    (lambda m: m.pop("architecture"), "architecture"),
    (lambda m: m["architecture"].update(activation=["silu"]), "activation"),
    (lambda m: m["architecture"].update(hidden_units="200"), "hidden_units"),
    (lambda m: m["architecture"].update(ensemble_size=True), "ensemble_size"),
    (lambda m: m["architecture"].update(callback="os.system"), "unknown arguments"),
    (lambda m: m["architecture"].pop("state_dim"), "missing arguments"),
    (lambda m: m["architecture"].update(activation="gelu"), "rejects the architecture"),
    (lambda m: m["architecture"].update(hidden_layers=-1), "rejects the architecture"),
    (lambda m: m["architecture"].update(hidden_layers=10**7), "at most"),
])
def test_bad_metadata_is_rejected(change, message):
    payload = model_to_payload(trained_looking("ensemble"))
    with pytest.raises(ModelFormatError, match=message):
        model_from_payload(with_metadata(payload, change))


def test_unknown_or_unexpected_kinds_and_malformed_fields_are_rejected():
    payload = model_to_payload(trained_looking("ensemble"))
    with pytest.raises(ModelFormatError, match="expected a model of kind 'mlp'"):
        model_from_payload(payload, expected_kind="mlp")
    unknown = with_metadata(dataclasses.replace(payload, kind="no_such_kind"), lambda m: m.update(kind="no_such_kind"))
    with pytest.raises(ModelFormatError, match="unknown model kind 'no_such_kind'"):
        model_from_payload(unknown)
    with pytest.raises(ModelFormatError, match="JSON"):
        model_from_payload(dataclasses.replace(payload, metadata_json="{not json"))
    with pytest.raises(ModelFormatError, match="hexadecimal"):
        model_from_payload(dataclasses.replace(payload, sha256="abc"))
    with pytest.raises(ModelFormatError, match="bytes"):
        model_from_payload(dataclasses.replace(payload, weights=[1, 2, 3]))


def test_a_missing_or_broken_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ModelFormatError, match="readable model"):
        load_model(tmp_path / "nothing here")
    save_model(trained_looking("mlp"), tmp_path / "model")
    (tmp_path / "model" / "model.json").write_text("[]")
    with pytest.raises(ModelFormatError, match="kind, sha256 and metadata"):
        load_model(tmp_path / "model")


def test_message_sized_payloads_carry_the_weights_compactly():
    model = ProbabilisticEnsemble(60, 20)  # a Shadow-hand-sized PETS ensemble
    payload = model_to_payload(model)
    parameters = sum(tensor.numel() for tensor in model.state_dict().values())
    assert len(payload.weights) < 4 * parameters + 8192
