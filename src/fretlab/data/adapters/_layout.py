"""Shared helpers for adapters that read a public dataset's own metadata CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import soundfile as sf

from fretlab.data.metadata import MetadataError, read_metadata

UNPITCHED = -1.0  # pitch_midi for sounds without a pitch (environmental sound)


def read_layout_csv(path: Path, columns: tuple[str, ...], layout: str) -> pd.DataFrame:
    """Read a dataset's metadata CSV and check it has the layout's columns."""
    if not path.is_file():
        raise MetadataError(f"{path}: {layout} metadata file not found; point data.root at the dataset folder "
                            "and data.metadata at its CSV (see the recipe params.yaml)")
    df = read_metadata(path)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MetadataError(f"{path}: missing columns {missing}; a {layout} metadata CSV has {list(columns)}")
    return df


def fold_numbers(df: pd.DataFrame, path: Path) -> pd.Series:
    """The ``fold`` column as integers; non-integer values are reported with their CSV lines."""
    values = pd.to_numeric(df["fold"], errors="coerce")
    bad = df.index[values.isna() | (values != values.round())]
    if len(bad):
        raise MetadataError(f"{path}: non-integer fold on line(s) {[int(i) + 2 for i in bad[:10]]}")
    return values.astype(int)


def clip_durations(root: Path, audio_paths: pd.Series) -> list[float]:
    """Each clip's duration from its file header (0.0 when unreadable: validation/featurize report it)."""
    out = []
    for rel in audio_paths:
        try:
            out.append(float(sf.info(str(root / rel)).duration))
        except (sf.LibsndfileError, RuntimeError, OSError):
            out.append(0.0)
    return out


def standard_table(root: Path, note_id: pd.Series, audio_path: pd.Series, label: pd.Series, group: pd.Series,
                   fold: pd.Series) -> pd.DataFrame:
    """The standard metadata (whole clips: onset 0, offset = duration) plus the dataset's ``fold``."""
    audio_path = audio_path.astype(str).reset_index(drop=True)
    label = label.astype(str).reset_index(drop=True)
    return pd.DataFrame({
        "note_id": note_id.astype(str).reset_index(drop=True),
        "audio_path": audio_path,
        "onset_sec": 0.0,
        "offset_sec": clip_durations(root, audio_path),
        "pitch_midi": UNPITCHED,
        "expression_style": label,
        "label_category": label,
        "group": group.astype(str).reset_index(drop=True),
        "fold": fold.reset_index(drop=True),
    })
