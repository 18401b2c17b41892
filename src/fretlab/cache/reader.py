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
