"""IDMT-SMT-Guitar adapter: pairing quirks, events, labels and groups from a tree of the archive's shape."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from fretlab.data.adapters.idmt import (
    IdmtError,
    UnpairedFilesWarning,
    label_for,
    pair_files,
    parse_annotation,
    read_idmt,
)
from fretlab.data.sources import load_source
from fretlab.params import parse_params
from idmt_fixtures import make_idmt_tree, write_annotation

KEY = ["audio_path", "onset_sec"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("idmt") / "IDMT-SMT-GUITAR_V2"
    return root, make_idmt_tree(root)


def _read(root: Path) -> pd.DataFrame:
    with pytest.warns(UnpairedFilesWarning):
        return read_idmt(root)


def test_every_annotated_event_comes_out_with_its_times_pitch_and_style(tree):
    root, expected = tree
    got = _read(root).sort_values(KEY).reset_index(drop=True)
    want = pd.DataFrame(expected["rows"]).sort_values(KEY).reset_index(drop=True)
    assert len(got) == len(want) == 3 * 6 + 3 * 4 + 6
    for col in want.columns:
        assert got[col].tolist() == want[col].tolist(), col
    assert got["note_id"].is_unique
    assert {"excitation_style", "fret_number", "string_number", "annotation_path", "instrument_model"} <= set(got)


def test_styles_map_to_the_three_classes():
    assert label_for("HA") == "harmonic"
    assert label_for("DN") == "dead_note"
    assert [label_for(s) for s in ("NO", "BE", "SL", "VI")] == ["general_note"] * 4


def test_groups_are_the_guitar_setup_in_dataset1_and_the_recording_elsewhere(tree):
    root, expected = tree
    got = _read(root)
    assert sorted(got["group"].unique()) == expected["groups"]
    d1 = got[got["audio_path"].str.startswith("dataset1/")]
    assert d1["group"].nunique() == 3 and d1.groupby("group").size().tolist() == [6, 6, 6]
    lick = got[got["audio_path"] == "dataset2/audio/AR_Lick1_FN.wav"]
    assert set(lick["group"]) == {"dataset2/audio/AR_Lick1_FN"} and len(lick) == 4


def test_pairing_ignores_audio_file_name_and_accepts_suffixed_annotation_stems(tree):
    root, _ = tree
    pairing = pair_files(root)
    pairs = {x.relative_to(root).as_posix(): w.relative_to(root).as_posix() for x, w in pairing.pairs}
    # audioFileName says "\G1-40100-…" and "old_take_1.wav": the stem decides
    assert pairs["dataset1/Fender Strat Clean Neck SC/annotation/G1-40100-1111-00001.xml"] == \
        "dataset1/Fender Strat Clean Neck SC/audio/G1-40100-1111-00001.wav"
    assert pairs["dataset1/Fender Strat Clean Neck SC/annotation/G1-40101-1111-00002.xml"] == \
        "dataset1/Fender Strat Clean Neck SC/audio/G1-40101-1111-00002.wav"
    assert pairs["dataset2/annotation/AR_Lick2_KN_corrected.xml"] == "dataset2/audio/AR_Lick2_KN.wav"
    assert len(pairs) == 18 + 3 + 1


def test_every_unpaired_file_is_reported_with_a_count(tree):
    root, expected = tree
    with pytest.warns(UnpairedFilesWarning) as caught:
        read_idmt(root)
    message = str(caught[0].message)
    assert message.startswith(f"{len(expected['unpaired'])} file(s) under {root} could not be paired")
    for rel in expected["unpaired"]:
        assert rel in message
    assert "annotation without audio" in message and "audio without annotation" in message
    assert "readme.txt" not in message


def test_longest_prefix_wins_and_an_exact_stem_beats_a_suffixed_one(tmp_path):
    ev = [{"pitch": 60, "onsetSec": 0.0, "offsetSec": 0.2, "fretNumber": 5, "stringNumber": 3,
           "excitationStyle": "PK", "expressionStyle": "NO"}]
    for stem in ("lick", "lick_long"):
        (tmp_path / "audio").mkdir(exist_ok=True)
        (tmp_path / "audio" / f"{stem}.wav").write_bytes(b"")
    for stem in ("lick", "lick_fixed", "lick_long_v2"):
        write_annotation(tmp_path / "annotation" / f"{stem}.xml", "x.wav", ev)
    pairing = pair_files(tmp_path)
    pairs = {x.name: w.name for x, w in pairing.pairs}
    assert pairs == {"lick.xml": "lick.wav", "lick_long_v2.xml": "lick_long.wav"}
    assert [(p.name, "already pairs" in why) for p, why in pairing.unpaired] == [("lick_fixed.xml", True)]


def test_nothing_paired_is_an_error_listing_the_files(tmp_path):
    write_annotation(tmp_path / "dataset2/annotation/a.xml", "a.wav", [])
    pattern = (r"(?s)no annotation \(\*\.xml\) pairs.*dataset2/annotation/a.xml: annotation without audio "
               r"\(no WAV named a\*\.wav in dataset2/audio\)")
    with pytest.raises(IdmtError, match=pattern):
        read_idmt(tmp_path)
    with pytest.raises(IdmtError, match="IDMT-SMT-Guitar folder not found"):
        read_idmt(tmp_path / "nope")


@pytest.mark.parametrize(("xml", "message"), [
    ("<instrumentRecording><transcription>", "not well-formed XML"),
    ("<song/>", "expected <instrumentRecording>"),
    ("<instrumentRecording><transcription/></instrumentRecording>", "no <transcription>/<event> elements"),
    ("<instrumentRecording><transcription><event><pitch>60</pitch></event></transcription></instrumentRecording>",
     r"event 1 lacks \['onsetSec'"),
    ("<instrumentRecording><transcription><event><pitch>60</pitch><onsetSec>1.0</onsetSec><offsetSec>0.5</offsetSec>"
     "<fretNumber>1</fretNumber><stringNumber>2</stringNumber><excitationStyle>PK</excitationStyle>"
     "<expressionStyle>NO</expressionStyle></event></transcription></instrumentRecording>",
     r"event 1 ends \(0.5 s\) before it starts \(1.0 s\)"),
    ("<instrumentRecording><transcription><event><pitch>C4</pitch><onsetSec>0</onsetSec><offsetSec>0.5</offsetSec>"
     "<fretNumber>1</fretNumber><stringNumber>2</stringNumber><excitationStyle>PK</excitationStyle>"
     "<expressionStyle>NO</expressionStyle></event></transcription></instrumentRecording>", "non-numeric"),
])
def test_bad_annotations_name_the_file_and_the_problem(tmp_path, xml, message):
    path = tmp_path / "bad.xml"
    path.write_text(xml)
    with pytest.raises(IdmtError, match=message) as err:
        parse_annotation(path)
    assert str(path) in str(err.value)


def test_idmt_source_validates_like_every_other_source(tree, tmp_path):
    root, expected = tree
    params = parse_params({"data": {"source": "idmt", "root": str(root)}})
    with pytest.warns(UnpairedFilesWarning):
        meta = load_source(params)
    assert len(meta) == len(expected["rows"])
    assert set(meta["label_category"]) == {"general_note", "harmonic", "dead_note"}
    assert all((root / p).is_file() for p in meta["audio_path"])  # relative to data.root

    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    (broken / "dataset3/audio/nocturne_take1.wav").unlink()
    (broken / "dataset3/audio/nocturne_take1.wav").mkdir()  # unreadable as a file: now unpaired, still reported
    with pytest.warns(UnpairedFilesWarning, match="dataset3/annotation/nocturne_take1.xml"):
        meta = load_source(parse_params({"data": {"source": "idmt", "root": str(broken)}}))
    assert not meta["audio_path"].str.contains("nocturne").any()
