"""The self-contained model directory: safetensors weights plus the config to rebuild them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fretlab import __version__
from fretlab.io import atomic_dir, read_json, write_json
from fretlab.models.classifier import Classifier
from fretlab.params import Params, ParamsError, parse_params

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class ModelDirError(ValueError):
    """A model directory that is missing files or comes from an incompatible version."""


def save_model_dir(out_dir: Path, model: Classifier, params: Params, classes: list[str], extra: dict[str, Any]) -> None:
    """Write weights (safetensors) and ``config.json`` (params, classes, versions).

    Both files are staged and the directory swapped in whole, so weights never sit next to
    another run's config.
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_dir(out_dir) as staging:
        save_file(state, str(staging / WEIGHTS), metadata={"format_version": str(FORMAT_VERSION)})
        write_json(staging / CONFIG, {
            "format_version": FORMAT_VERSION,
            "fretlab_version": __version__,
            "classes": classes,
            "params": params.model_dump(mode="json"),
            **extra,
        })


def load_model_dir(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[Classifier, Params, list[str]]:
    """Rebuild the classifier from a model directory, in eval mode. No pickle is involved."""
    model_dir = Path(model_dir)
    for name in (WEIGHTS, CONFIG):
        if not (model_dir / name).is_file():
            raise ModelDirError(f"{model_dir}: missing {name}; point to a directory written by the train stage")
    try:
        config = read_json(model_dir / CONFIG)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ModelDirError(f"{model_dir}: {CONFIG} is not valid JSON ({exc}); "
                            "retrain with `dvc repro train`") from None
    if not isinstance(config, dict):
        raise ModelDirError(f"{model_dir}: {CONFIG} holds no fretlab model config; retrain with `dvc repro train`")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelDirError(
            f"{model_dir}: model format {version} (fretlab {config.get('fretlab_version', '?')}) is not supported by "
            f"fretlab {__version__} (format {FORMAT_VERSION}); retrain with `dvc repro train`"
        )
    missing = [key for key in ("params", "classes") if key not in config]
    if missing:
        raise ModelDirError(f"{model_dir}: {CONFIG} lacks {missing}; retrain with `dvc repro train`")
    try:
        params = parse_params(config["params"], f"{model_dir / CONFIG}")
    except ParamsError as exc:
        raise ModelDirError(f"{model_dir}: incompatible config ({exc}); retrain with `dvc repro train`") from None
    classes = list(config["classes"])
    model = Classifier(params, len(classes))
    try:
        weights = load_file(str(model_dir / WEIGHTS))
    except (SafetensorError, OSError) as exc:  # e.g. a pickle renamed to .safetensors: refused, never unpickled
        raise ModelDirError(f"{model_dir}: {WEIGHTS} is not a readable safetensors file ({exc}); "
                            "retrain with `dvc repro train`") from None
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise ModelDirError(f"{model_dir}: weights do not match the config ({exc})") from None
    return model.to(device).eval(), params, classes
