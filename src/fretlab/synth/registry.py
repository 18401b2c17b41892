"""Which embedded generator ``data.source`` names: guitar note events, music tracks, rudiment takes or playlists."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fretlab.params import Params
from fretlab.recommend.synthetic import synthesize_playlists
from fretlab.synth.attributes import synthesize_tracks
from fretlab.synth.guitar import synthesize_dataset
from fretlab.synth.rudiments import synthesize_rudiments


def synthesize(params: Params, out_dir: Path, workers: int) -> pd.DataFrame:
    """Render the dataset for ``data.source`` (``synthetic``, ``synthetic_tracks``, ``synthetic_rudiments`` or
    ``synthetic_playlists``: a song catalogue written beside the returned playlists, no audio)."""
    if params.data.source == "synthetic_tracks":
        return synthesize_tracks(params.synthesize_tracks, out_dir, params.base.seed, workers)
    if params.data.source == "synthetic_rudiments":
        return synthesize_rudiments(params.synthesize_rudiments, out_dir, params.base.seed, workers)
    if params.data.source == "synthetic_playlists":
        return synthesize_playlists(params.synthesize_playlists, out_dir, params.base.seed)
    if params.data.source == "synthetic":
        return synthesize_dataset(params.synthesize, params.data.classes, out_dir, params.base.seed, workers)
    raise ValueError(f"data.source is '{params.data.source}': only synthetic, synthetic_tracks, "
                     "synthetic_rudiments and synthetic_playlists are generated; "
                     "a real dataset needs no synthesize stage")
