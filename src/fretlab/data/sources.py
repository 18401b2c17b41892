"""Data sources: each turns a raw dataset under ``data.root`` into the standard metadata table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from fretlab.data.adapters.esc50 import read_esc50
from fretlab.data.adapters.idmt import read_idmt
from fretlab.data.adapters.urbansound8k import read_urbansound8k
from fretlab.data.metadata import read_metadata, validate_metadata, validate_tracks
from fretlab.params import Params
from fretlab.tasks.targets import encode_targets, resolve_targets


def _from_csv(params: Params) -> pd.DataFrame:
    return read_metadata(Path(params.data.root) / params.data.metadata)


SOURCES: dict[str, Callable[[Params], pd.DataFrame]] = {
    "synthetic": _from_csv,  # the synthesize stage writes metadata.csv in the standard schema
    "synthetic_tracks": _from_csv,  # the track generator's metadata.csv: one row per track, one column per target
    "synthetic_rudiments": _from_csv,  # the rudiment generator's metadata.csv: one row per take (a track)
    "csv": _from_csv,
    "esc50": lambda p: read_esc50(p.data.root, p.data.metadata, p.data.esc10, p.data.classes),
    "urbansound8k": lambda p: read_urbansound8k(p.data.root, p.data.metadata),
    "idmt": lambda p: read_idmt(p.data.root),  # data.root = the unpacked IDMT-SMT-Guitar archive
}


def load_source(params: Params) -> pd.DataFrame:
    """Read ``data.source`` and validate it against the schema, labels and audio root."""
    try:
        reader = SOURCES[params.data.source]
    except KeyError:
        raise ValueError(f"unknown data.source '{params.data.source}'; choose one of {sorted(SOURCES)}") from None
    df = reader(params)
    where = Path(params.data.root) / params.data.metadata if params.data.source != "idmt" else params.data.root
    if params.featurize.kind == "tracks":  # whole tracks with target columns, checked cell by cell
        df = validate_tracks(df, params.data.root, source=str(where))
        encode_targets(df, resolve_targets(params), str(where))
        return df
    return validate_metadata(df, params.data.classes, params.data.root, source=str(where))
