"""UrbanSound8K adapter: ``metadata/UrbanSound8K.csv`` + ``audio/fold1..fold10`` → standard metadata + ``fold``.

The group is ``fsID`` (the Freesound recording the slices come from), so slices of one recording
never straddle folds. Each slice file is a whole clip (its ``start``/``end`` refer to the source).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fretlab.data.adapters._layout import fold_numbers, read_layout_csv, standard_table

METADATA = "metadata/UrbanSound8K.csv"
COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")


def read_urbansound8k(root: str | Path, metadata: str = METADATA) -> pd.DataFrame:
    """Read an UrbanSound8K tree into the standard metadata, one row per slice."""
    root = Path(root)
    path = root / metadata
    df = read_layout_csv(path, COLUMNS, "UrbanSound8K")
    folds = fold_numbers(df, path)
    names = df["slice_file_name"].astype(str)
    return standard_table(
        root,
        note_id=names.str.removesuffix(".wav"),
        audio_path="audio/fold" + folds.astype(str) + "/" + names,
        label=df["class"],
        group="fs" + df["fsID"].astype(str),
        fold=folds,
    )
