"""Finding the model in a directory: a learner data directory, a model store, or one saved model."""

import os
from pathlib import Path

from mbrl_ros.learning.model_store import ModelStore
from mbrl_ros.models import DynamicsModel, ModelFormatError, load_model

MODEL_FILE = "model.json"  # what save_model writes next to the weights


def load_model_directory(path: str | os.PathLike) -> tuple[DynamicsModel, int]:
    """The newest model under ``path`` and its version.

    ``path`` may be a learner data directory (``mbrl-ros train`` output, the learner's ``data_dir``: the newest
    version in ``path/models``), a :class:`~mbrl_ros.learning.ModelStore` directory (``v000001/``, ...) or a
    single model directory written by :func:`~mbrl_ros.models.save_model` (version 1).

    Raises:
        ValueError: nothing usable there (the text says what was looked for), or an invalid model.
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"model directory {path} does not exist")
    if (path / MODEL_FILE).is_file():
        model, version = load_model(path), 1
    else:
        for directory in (path / "models", path):
            if directory.is_dir() and ModelStore(directory).latest_version():
                store = ModelStore(directory)
                version = store.latest_version()
                try:
                    model = store.load(version)
                except ModelFormatError as error:
                    raise ValueError(f"{store.path(version)}: {error}") from error
                break
        else:
            raise ValueError(f"{path} holds no model: neither {MODEL_FILE}, nor versions v000001/... in it or in "
                             f"{path / 'models'}")
    if not isinstance(model, DynamicsModel):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a dynamics model")
    return model, version
