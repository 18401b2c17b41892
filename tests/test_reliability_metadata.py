"""Bad metadata: every problem names the file, the CSV line(s) and the fix."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from _reliability import CLASSES, meta_rows, tone, write_audio
from fretlab.data.metadata import REQUIRED_COLUMNS, MetadataError, read_metadata, validate_metadata


@pytest.fixture
def root(tmp_path):
    """An audio root holding a.wav, b.wav and c.wav."""
    audio = tmp_path / "root"
    for name in ("a", "b", "c"):
        write_audio(audio / f"{name}.wav", tone(0.5))
    return audio


def _rows():
    rows = [{"audio_path": "a.wav"}, {"audio_path": "b.wav"}, {"audio_path": "c.wav"}]
    return meta_rows(rows)


def _validate(df, root):
    return validate_metadata(df, CLASSES, root, source="meta.csv")


def test_valid_metadata_passes(root):
    out = _validate(_rows(), root)
    assert len(out) == 3


def test_missing_columns_are_listed_with_the_schema(root):
    df = _rows().drop(columns=["onset_sec", "group"])
    with pytest.raises(MetadataError, match=r"meta.csv: missing columns \['onset_sec', 'group'\]") as info:
        _validate(df, root)
    assert str(list(REQUIRED_COLUMNS)) in str(info.value)


def test_unknown_labels_name_the_lines_and_allowed_labels(root):
    df = _rows()
    df.loc[1, "label_category"] = "tapping"
    with pytest.raises(MetadataError, match=r"unknown label\(s\) \['tapping'\] on line\(s\) 3") as info:
        _validate(df, root)
    assert "allowed labels are" in str(info.value) and "data.classes" in str(info.value)


def test_duplicate_ids_name_every_line(root):
    df = _rows()
    df.loc[2, "note_id"] = df.loc[0, "note_id"]
    with pytest.raises(MetadataError, match=r"duplicate note_id\(s\) \['n000'\] on lines 2, 4; note_id must be unique"):
        _validate(df, root)


def test_negative_onset_is_refused(root):
    df = _rows()
    df.loc[0, "onset_sec"] = -0.5
    with pytest.raises(MetadataError, match=r"negative onset_sec on line\(s\) 2; onsets count from 0 s"):
        _validate(df, root)


def test_offset_before_onset_is_refused(root):
    df = _rows()
    df.loc[2, ["onset_sec", "offset_sec"]] = [0.4, 0.1]
    with pytest.raises(MetadataError, match=r"offset_sec before onset_sec on line\(s\) 4; swap or fix the times"):
        _validate(df, root)


@pytest.mark.parametrize("value", ["soon", "", "inf"])
def test_non_numeric_times_are_refused(root, value):
    df = _rows().astype({"onset_sec": object})
    df.loc[1, "onset_sec"] = value
    with pytest.raises(MetadataError, match=r"non-numeric onset_sec on line\(s\) 3"):
        _validate(df, root)


def test_empty_table_is_refused(root):
    with pytest.raises(MetadataError, match="holds no events"):
        _validate(_rows().iloc[:0], root)


def test_missing_audio_file_names_line_and_path(root):
    df = _rows()
    df.loc[1, "audio_path"] = "gone.wav"
    with pytest.raises(MetadataError, match=r"audio file\(s\) missing under .* on line\(s\) 3 \(e.g. 'gone.wav'\)"):
        _validate(df, root)


@pytest.mark.parametrize("path", ["../outside.wav", "sub/../../outside.wav", "/etc/hostname"])
def test_paths_escaping_the_audio_root_are_refused(root, path):
    write_audio(root.parent / "outside.wav", tone(0.1))
    df = _rows()
    df.loc[0, "audio_path"] = path
    with pytest.raises(MetadataError, match=r"escapes the audio root .* on line\(s\) 2") as info:
        _validate(df, root)
    assert "keep audio files inside data.root" in str(info.value)


def test_symlink_escaping_the_audio_root_is_refused(root):
    outside = write_audio(root.parent / "secret.wav", tone(0.1))
    os.symlink(outside, root / "link.wav")
    df = _rows()
    df.loc[1, "audio_path"] = "link.wav"
    with pytest.raises(MetadataError, match=r"escapes the audio root .* on line\(s\) 3 \(e.g. 'link.wav'\)"):
        _validate(df, root)


def test_symlinked_directory_escaping_the_root_is_refused(root):
    elsewhere = root.parent / "elsewhere"
    write_audio(elsewhere / "x.wav", tone(0.1))
    os.symlink(elsewhere, root / "linked_dir")
    df = _rows()
    df.loc[0, "audio_path"] = "linked_dir/x.wav"
    with pytest.raises(MetadataError, match="escapes the audio root"):
        _validate(df, root)


def test_symlink_inside_the_root_is_allowed(root):
    os.symlink(root / "a.wav", root / "alias.wav")
    df = _rows()
    df.loc[0, "audio_path"] = "alias.wav"
    assert len(_validate(df, root)) == 3


def test_accented_file_names_in_utf8_metadata_work(root, tmp_path):
    write_audio(root / "Gitarre Größe" / "café.wav", tone(0.1))
    df = _rows()
    df.loc[0, "audio_path"] = "Gitarre Größe/café.wav"
    csv = tmp_path / "meta.csv"
    df.to_csv(csv, index=False, encoding="utf-8")
    back = read_metadata(csv)
    assert back.loc[0, "audio_path"] == "Gitarre Größe/café.wav"
    assert len(_validate(back, root)) == 3


def test_non_utf8_metadata_is_refused_with_the_fix(tmp_path):
    csv = tmp_path / "latin1.csv"
    csv.write_bytes(",".join(REQUIRED_COLUMNS).encode() + b"\nn1,caf\xe9.wav,0,1,60,NO,harmonic,g\n")
    with pytest.raises(MetadataError, match=r"latin1.csv: not UTF-8 .*re-save the CSV as UTF-8"):
        read_metadata(csv)


def test_unparseable_csv_is_refused(tmp_path):
    csv = tmp_path / "broken.csv"
    csv.write_text('note_id,audio_path\n"n1,a.wav\n', encoding="utf-8")
    with pytest.raises(MetadataError, match=r"broken\.csv: cannot parse CSV"):
        read_metadata(csv)


def test_ids_keep_leading_zeros_and_text(tmp_path):
    """note_id/audio_path/group are read as text: '007' must not become 7 (silent id collisions)."""
    csv = tmp_path / "ids.csv"
    pd.DataFrame([{c: "x" for c in REQUIRED_COLUMNS} | {"note_id": "007", "group": "0001"}]).to_csv(csv, index=False)
    back = read_metadata(csv)
    assert back.loc[0, "note_id"] == "007" and back.loc[0, "group"] == "0001"


def test_cached_resolver_agrees_with_a_full_resolve_on_every_kind_of_path(tmp_path):
    from fretlab.data.metadata import AudioRoot

    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    for f in (root / "top.wav", root / "a" / "x.wav", root / "a" / "b" / "y.wav", outside / "o.wav"):
        f.write_bytes(b"")
    (root / "in_link").symlink_to(root / "a")  # a directory symlink that stays inside
    (root / "out_link").symlink_to(outside)  # one that leaves
    (root / "a" / "file_out.wav").symlink_to(outside / "o.wav")  # a file symlink that leaves
    (root / "a" / "file_in.wav").symlink_to(root / "top.wav")
    paths = ["top.wav", "./top.wav", "a/x.wav", "a/b/y.wav", "a/b/../x.wav", "a/../top.wav", "../outside/o.wav",
             "a/../../outside/o.wav", "in_link/x.wav", "in_link/b/y.wav", "out_link/o.wav", "a/file_out.wav",
             "a/file_in.wav", str(outside / "o.wav"), str(root / "top.wav"), "a/..", "missing/z.wav", "a//x.wav"]
    resolver = AudioRoot(root)
    for path in paths * 2:  # the second pass answers from the directory cache
        full = (root / path).resolve()
        expected = full if full.is_relative_to(root.resolve()) else None
        assert resolver.resolve(path) == expected, path
