"""The recommender's model directory: safetensors weights (song features included) and a JSON config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fretlab import __version__
from fretlab.io import atomic_dir, read_json, write_json
from fretlab.params import Recommender
from fretlab.recommend.model import SetTransformer

FORMAT = "fretlab-set-transformer/1"
WEIGHTS, CONFIG = "model.safetensors", "config.json"


class RecommenderDirError(ValueError):
    """A model directory that is missing files or is not a set-transformer recommender."""


def save_recommender(out_dir: Path, model: SetTransformer, song_ids: list[str], extra: dict[str, Any]) -> None:
    """Write ``model.safetensors`` and ``config.json`` (format, params, song ids in vocabulary order, ``extra``)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_dir(out_dir) as staging:
        save_file(state, str(staging / WEIGHTS), metadata={"format": FORMAT})
        write_json(staging / CONFIG, {"format": FORMAT, "fretlab_version": __version__,
                                      "recommender": model.cfg.model_dump(mode="json"), "song_ids": song_ids,
                                      **extra})


def load_recommender(model_dir: str | Path) -> tuple[SetTransformer, dict[str, Any]]:
    """The model in eval mode and its config; no pickle is involved."""
    model_dir = Path(model_dir)
    for name in (WEIGHTS, CONFIG):
        if not (model_dir / name).is_file():
            raise RecommenderDirError(f"{model_dir}: missing {name}; point to the directory written by "
                                      "train_recommender (recipes/playlists: models/default)")
    try:
        config = read_json(model_dir / CONFIG)
    except ValueError as exc:
        raise RecommenderDirError(f"{model_dir}: {CONFIG} is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise RecommenderDirError(f"{model_dir}: not a set-transformer recommender ({CONFIG} format is "
                                  f"{config.get('format') if isinstance(config, dict) else None!r}, "
                                  f"expected {FORMAT!r}); retrain with `dvc repro train_recommender`")
    try:
        weights = load_file(str(model_dir / WEIGHTS))
    except (SafetensorError, OSError) as exc:
        raise RecommenderDirError(f"{model_dir}: {WEIGHTS} is not a readable safetensors file ({exc})") from None
    model = SetTransformer(Recommender.model_validate(config["recommender"]), weights["features"])
    model.load_state_dict(weights)
    model.eval()
    return model, config


def model_threads(requested: int) -> None:
    """Use ``requested`` torch threads (0: leave torch's default, all cores)."""
    if requested:
        torch.set_num_threads(requested)
