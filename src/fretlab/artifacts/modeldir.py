"""The self-contained model directory: safetensors weights plus the config to rebuild them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from fretlab import __version__
from fretlab.io import atomic_dir, read_json, write_json
from fretlab.models.classifier import build_task_model
from fretlab.params import Params, ParamsError, parse_params
from fretlab.tasks.targets import Standardizer, TargetSpec, resolve_targets

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class ModelDirError(ValueError):
    """A model directory that is missing files or comes from an incompatible version."""


# Params added after model format 1. Each is written to config.json only when it differs from its default,
# so a model directory from a run that does not use them stays byte-identical to one written before they
# existed (same DVC hash); loading fills the defaults back in.
LATER_PARAMS = (("task",), ("synthesize_tracks",), ("synthesize_rudiments",), ("featurize", "kind"),
                ("featurize", "tracks"), ("model", "gru", "layer_norm"), ("split", "min_values"),
                ("split", "val_where"), ("model", "rf", "per_target"), ("predict", "onset_n_fft"),
                ("predict", "onset_n_mels"), ("synthesize_playlists",), ("playlist_split",), ("recommender",),
                ("recommender_baselines",), ("recommender_eval",), ("featurize", "tracks", "strokes"),
                ("model", "gru", "frame_stride"), ("train", "augment", "crop"), ("train", "augment", "tilt_db"),
                ("train", "augment", "fade_in_ms"), ("synthesize", "harmonic_sustain_sec"),
                ("synthesize", "frets"), ("synthesize", "pitch_sampling"), ("synthesize", "palm_mute_sec"),
                ("synthesize", "palm_mute_decay_sec"), ("synthesize", "damping_power"),
                ("synthesize", "finger_rolloff"), ("synthesize", "pick_rolloff"),
                ("synthesize", "harmonic_touch_decay_sec"), ("synthesize", "slap_click_gain"),
                ("synthesize", "effects", "swell_probability"),
                ("synthesize", "effects", "swell_ms"), ("synthesize", "harmonic_rolloff"),
                ("train", "augment", "gate_probability"), ("train", "augment", "gate_db"), ("train", "ema_decay"),
                ("synthesize", "palm_mute_brightness"), ("synthesize", "palm_mute_noise"),
                ("synthesize", "harmonic_pluck_position"))
# Params of the evaluation-only check set: never written to config.json, so changing them never changes a model
# directory (or its DVC hash); loading fills the defaults back in.
EVALUATION_ONLY_PARAMS = (("checkset",), ("paths", "checkset"), ("paths", "checkset_report"), ("paths", "model_card"))
TARGET_SCALER = ("target_scaler.mean", "target_scaler.std")  # regression-target standardization, in the weights


def dump_params(params: Params) -> dict[str, Any]:
    """``params`` as JSON-ready data for ``config.json``: without the :data:`LATER_PARAMS` at their defaults and
    the :data:`EVALUATION_ONLY_PARAMS`."""
    dump = params.model_dump(mode="json")
    defaults = Params().model_dump(mode="json")
    for path in LATER_PARAMS:
        *parents, key = path
        section, default = dump, defaults
        for part in parents:
            section, default = section.get(part, {}), default[part]  # {}: the parent was dropped already
        if section.get(key) == default.get(key):
            section.pop(key, None)
    for *parents, key in EVALUATION_ONLY_PARAMS:
        section = dump
        for part in parents:
            section = section[part]
        section.pop(key, None)
    return dump


@dataclass(frozen=True)
class TaskModel:
    """A loaded model with everything needed to turn its outputs into predictions."""

    model: nn.Module
    params: Params
    classes: list[str]
    specs: list[TargetSpec]
    scaler: Standardizer


def save_model_dir(out_dir: Path, model: nn.Module, params: Params, classes: list[str], extra: dict[str, Any],
                   scaler: Standardizer | None = None) -> None:
    """Write weights (safetensors, with the target standardization when a regression target has one) and
    ``config.json`` (params, classes, versions).

    Both files are staged and the directory swapped in whole, so weights never sit next to
    another run's config.
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if scaler is not None and (np.any(scaler.mean != 0) or np.any(scaler.std != 1)):
        state[TARGET_SCALER[0]] = torch.from_numpy(np.asarray(scaler.mean, dtype=np.float64))
        state[TARGET_SCALER[1]] = torch.from_numpy(np.asarray(scaler.std, dtype=np.float64))
    with atomic_dir(out_dir) as staging:
        save_file(state, str(staging / WEIGHTS), metadata={"format_version": str(FORMAT_VERSION)})
        write_json(staging / CONFIG, {
            "format_version": FORMAT_VERSION,
            "fretlab_version": __version__,
            "classes": classes,
            "params": dump_params(params),
            **extra,
        })


def load_model_dir(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Params, list[str]]:
    """Rebuild the model from a model directory, in eval mode: ``(model, params, classes)``. No pickle is involved."""
    loaded = load_task_model(model_dir, device)
    return loaded.model, loaded.params, loaded.classes


def load_task_model(model_dir: str | Path, device: str | torch.device = "cpu") -> TaskModel:
    """Rebuild the model, its targets and their standardization from a model directory, in eval mode."""
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
    try:
        weights = load_file(str(model_dir / WEIGHTS))
    except (SafetensorError, OSError) as exc:  # e.g. a pickle renamed to .safetensors: refused, never unpickled
        raise ModelDirError(f"{model_dir}: {WEIGHTS} is not a readable safetensors file ({exc}); "
                            "retrain with `dvc repro train`") from None
    specs = resolve_targets(params)
    scaler = Standardizer(np.zeros(len(specs)), np.ones(len(specs)))
    if TARGET_SCALER[0] in weights:
        scaler = Standardizer(*(weights.pop(k).numpy() for k in TARGET_SCALER))
    dims = weights["mean"].shape[0] if params.featurize.kind == "tracks" and "mean" in weights else None
    try:
        model = build_task_model(params, specs, dims)
        model.load_state_dict(weights)
    except (RuntimeError, ValueError) as exc:
        raise ModelDirError(f"{model_dir}: weights do not match the config ({exc})") from None
    return TaskModel(model.to(device).eval(), params, classes, specs, scaler)
