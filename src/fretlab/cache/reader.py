"""Reading the feature cache written by the featurize stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


class FeatureCacheError(ValueError):
    """A feature cache whose arrays and index disagree."""


def load_features(features_dir: str | Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A split's memory-mapped features, integer labels and note ids."""
    features_dir = Path(features_dir)
    x = np.load(features_dir / f"{split}.npy", mmap_mode="r")
    index = pd.read_csv(features_dir / f"{split}.csv", dtype={"note_id": str})
    if len(index) != len(x):
        raise FeatureCacheError(f"{features_dir}: {split}.npy has {len(x)} rows but {split}.csv has {len(index)}; "
                             "re-run `dvc repro featurize`")
    return x, index["label"].to_numpy(dtype=np.int64, copy=True), index["note_id"].tolist()


ID_COLUMNS = ("note_id", "track_id")  # event caches and track caches


def read_index(features_dir: str | Path, split: str) -> pd.DataFrame:
    """A split's index table (``<split>.csv``) as text, empty cells kept as empty strings (missing targets)."""
    path = Path(features_dir) / f"{split}.csv"
    if not path.is_file():
        raise FeatureCacheError(f"{path} is missing; re-run `dvc repro featurize`")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def row_ids(index: pd.DataFrame) -> list[str]:
    """Each cached row's id: ``note_id`` for events, ``track_id`` for tracks."""
    column = next((c for c in ID_COLUMNS if c in index.columns), None)
    if column is None:
        raise FeatureCacheError(f"the feature index has none of the id columns {list(ID_COLUMNS)}; "
                                "re-run `dvc repro featurize`")
    return index[column].tolist()
