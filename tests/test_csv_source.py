"""``data.source: csv``: a metadata CSV (``data.metadata``, under ``data.root``); each bad case has its own error."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from fretlab.data.metadata import REQUIRED_COLUMNS, MetadataError
from fretlab.data.sources import load_source
from fretlab.params import parse_params

CLASSES = ["general_note", "harmonic", "dead_note"]


@pytest.fixture
def dataset(tmp_path):
    """A valid dataset: three WAVs and labels/meta.csv under data/raw/my_guitar."""
    root = tmp_path / "data/raw/my_guitar"
    for name in ("a", "b", "c"):
        (root / "audio").mkdir(parents=True, exist_ok=True)
        sf.write(root / "audio" / f"{name}.wav", np.zeros(4410, np.float32), 44100)
    rows = pd.DataFrame({
        "note_id": ["n1", "n2", "n3"], "audio_path": ["audio/a.wav", "audio/b.wav", "audio/c.wav"],
        "onset_sec": [0.0, 0.0, 0.01], "offset_sec": [0.1, 0.1, 0.09], "pitch_midi": [60, 64, 67],
        "expression_style": ["NO", "HA", "DN"], "label_category": CLASSES, "group": ["g1", "g2", "g3"],
    })
    return root, rows


def _load(root, rows: pd.DataFrame):
    path = root / "labels" / "meta.csv"
    path.parent.mkdir(exist_ok=True)
    rows.to_csv(path, index=False)
    params = parse_params({"data": {"source": "csv", "root": str(root), "metadata": "labels/meta.csv"}})
    return load_source(params)


def _fails(root, rows: pd.DataFrame, pattern: str) -> str:
    with pytest.raises(MetadataError) as err:
        _load(root, rows)
    message = str(err.value)
    assert message.startswith(f"{root / 'labels' / 'meta.csv'}: "), message  # names the file
    assert re.search(pattern, message), message
    return message


def test_a_valid_csv_loads(dataset):
    root, rows = dataset
    meta = _load(root, rows)
    assert meta["note_id"].tolist() == ["n1", "n2", "n3"]
    assert meta["onset_sec"].dtype == float


def test_missing_columns_are_listed(dataset):
    root, rows = dataset
    message = _fails(root, rows.drop(columns=["pitch_midi", "group"]), r"missing columns \['pitch_midi', 'group'\]")
    assert str(list(REQUIRED_COLUMNS)) in message  # and the schema to fix it against


def test_unknown_labels_name_their_lines(dataset):
    root, rows = dataset
    rows.loc[[0, 2], "label_category"] = ["tapping", "slap"]
    _fails(root, rows, r"unknown label\(s\) \['slap', 'tapping'\] on line\(s\) 2, 4; allowed labels are "
                       r"\['general_note', 'harmonic', 'dead_note'\]")


def test_duplicate_note_ids_name_their_lines(dataset):
    root, rows = dataset
    rows.loc[2, "note_id"] = "n1"
    _fails(root, rows, r"duplicate note_id\(s\) \['n1'\] on lines 2, 4; note_id must be unique")


def test_missing_audio_files_name_line_and_path(dataset):
    root, rows = dataset
    rows.loc[1, "audio_path"] = "audio/gone.wav"
    _fails(root, rows, r"audio file\(s\) missing under .*my_guitar on line\(s\) 3 \(e\.g\. 'audio/gone\.wav'\)")


def test_offset_before_onset_names_its_line(dataset):
    root, rows = dataset
    rows.loc[2, ["onset_sec", "offset_sec"]] = [0.5, 0.2]
    _fails(root, rows, r"offset_sec before onset_sec on line\(s\) 4; swap or fix the times")


@pytest.mark.parametrize("escape", ["../outside.wav", "audio/../../outside.wav", "ABSOLUTE"])
def test_paths_escaping_the_root_are_refused_even_when_the_file_exists(dataset, escape):
    root, rows = dataset
    outside = root.parent / "outside.wav"
    sf.write(outside, np.zeros(4410, np.float32), 44100)  # the file exists: only its location is wrong
    rows.loc[0, "audio_path"] = str(outside) if escape == "ABSOLUTE" else escape
    _fails(root, rows, r"audio_path escapes the audio root .*my_guitar on line\(s\) 2 .*keep audio files inside "
                       r"data\.root")


def test_missing_metadata_file_names_the_path(dataset):
    root, _ = dataset
    params = parse_params({"data": {"source": "csv", "root": str(root), "metadata": "nope.csv"}})
    with pytest.raises(MetadataError, match=r"nope\.csv: metadata file not found"):
        load_source(params)
