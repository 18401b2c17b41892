"""ESC-50 adapter: ``meta/esc50.csv`` + ``audio/*.wav`` → the standard metadata with a ``fold`` column.

The group is ``src_file`` (the Freesound recording a clip was cut from), so clips of one source
never straddle folds; ``esc10`` keeps only the ESC-10 subset.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fretlab.data.adapters._layout import fold_numbers, read_layout_csv, standard_table
from fretlab.data.metadata import MetadataError

METADATA = "meta/esc50.csv"
COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")


def read_esc50(root: str | Path, metadata: str = METADATA, esc10: bool = False,
               classes: list[str] | None = None) -> pd.DataFrame:
    """Read an ESC-50 tree; with ``esc10`` only rows flagged in the ``esc10`` column.

    When ``classes`` is given for the ESC-10 subset, it must name exactly the subset's categories.
    """
    root = Path(root)
    path = root / metadata
    df = read_layout_csv(path, COLUMNS, "ESC-50")
    if esc10:
        df = df[df["esc10"].astype(str).str.strip().str.lower().isin(("true", "1"))]
        if df.empty:
            raise MetadataError(f"{path}: data.esc10 is true but no row has esc10 = True")
        found = sorted(set(df["category"].astype(str)))
        if classes is not None and set(classes) != set(found):
            raise MetadataError(
                f"{path}: data.esc10 is true, so data.classes must list the ESC-10 categories {found} "
                f"(missing: {sorted(set(found) - set(classes))}, not in ESC-10: {sorted(set(classes) - set(found))})"
            )
    filenames = df["filename"].astype(str)
    return standard_table(
        root,
        note_id=filenames.str.removesuffix(".wav"),
        audio_path="audio/" + filenames,
        label=df["category"],
        group="src" + df["src_file"].astype(str),
        fold=fold_numbers(df, path),
    )
