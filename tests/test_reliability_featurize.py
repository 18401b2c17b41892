"""featurize with bad items: a clear error by default; with on_error: skip, a complete report and counts."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest

from _reliability import CLASSES, meta_rows, small_cfg, tone, write_audio
from fretlab.cache.featurize import FeaturizeError, featurize_all, file_tasks
from fretlab.data.splits import SplitError, check_split_classes
from fretlab.io import NpyRowWriter, read_json
from fretlab.tasks.evaluation import write_data_counts

GOOD = [  # (file, onset) pairs that featurize cleanly; every class in every split
    ("train/a.wav", 0.0), ("train/a.wav", 0.6), ("train/b.wav", 0.0), ("train/c.wav", 0.0), ("train/c.wav", 0.4),
    ("train/d.wav", 0.0), ("val/e.wav", 0.0), ("val/f.wav", 0.0), ("val/g.wav", 0.0),
    ("test/h.wav", 0.0), ("test/i.wav", 0.0), ("test/j.wav", 0.2),
]


def _good_meta() -> pd.DataFrame:
    rows = [{"audio_path": path, "onset_sec": onset, "split": path.split("/")[0]} for path, onset in GOOD]
    df = meta_rows(rows)
    df["label_category"] = [CLASSES[i % 3] for i in range(len(df))]
    df["note_id"] = [f"ok{i:02d}" for i in range(len(df))]
    return df


@pytest.fixture
def root(tmp_path):
    audio = tmp_path / "audio"
    for k, name in enumerate(sorted({p for p, _ in GOOD})):
        write_audio(audio / name, tone(1.2, freq=200.0 + 50 * k), subtype="PCM_16")
    # the bad ones
    (audio / "bad").mkdir()
    (audio / "bad" / "random.wav").write_bytes(np.random.default_rng(0).bytes(2048))
    full = write_audio(audio / "bad" / "full.wav", tone(1.0)).read_bytes()
    (audio / "bad" / "truncated.wav").write_bytes(full[: len(full) // 2])
    nan = tone(0.5)
    nan[10] = np.nan
    write_audio(audio / "bad" / "nan.wav", nan, subtype="FLOAT")
    write_audio(audio / "bad" / "empty.wav", np.zeros(0, np.float32))
    write_audio(tmp_path / "outside.wav", tone(0.5))
    os.symlink(tmp_path / "outside.wav", audio / "bad" / "escape.wav")
    return audio


BAD = {  # note_id -> (audio_path, onset, expected reason fragment)
    "bad_random": ("bad/random.wav", 0.0, "cannot decode audio"),
    "bad_truncated": ("bad/truncated.wav", 0.0, "truncated WAV"),
    "bad_nan": ("bad/nan.wav", 0.0, "NaN or infinite"),
    "bad_empty": ("bad/empty.wav", 0.0, "holds no samples"),
    "bad_escape": ("bad/escape.wav", 0.0, "escapes the audio root"),
    "bad_missing": ("bad/missing.wav", 0.0, "audio file not found"),
    "bad_onset": ("train/a.wav", 5.0, "onset_sec 5.000 is past the end of the file (1.200 s)"),
}


def _with_bad(split: str = "train") -> pd.DataFrame:
    bad = meta_rows([{"audio_path": p, "onset_sec": o, "note_id": n, "split": split} for n, (p, o, _) in BAD.items()])
    return pd.concat([_good_meta(), bad], ignore_index=True)


def test_bad_item_raises_naming_file_row_and_fix(root, tmp_path):
    meta = pd.concat([_good_meta(), meta_rows([{"audio_path": "train/a.wav", "onset_sec": 5.0, "note_id": "late",
                                                "split": "train"}])], ignore_index=True)
    out = tmp_path / "features"
    with pytest.raises(FeaturizeError) as info:
        featurize_all(meta, root, small_cfg(), CLASSES, out, workers=1)
    msg = str(info.value)
    assert "train/a.wav: onset_sec 5.000 is past the end of the file (1.200 s)" in msg
    assert "correct the metadata row" in msg and "(note_id late)" in msg and "featurize.on_error: skip" in msg
    assert not out.exists(), "a failed run must not leave a feature cache behind"


@pytest.mark.parametrize("note_id", sorted(BAD))
def test_each_bad_item_raises_its_own_message(root, tmp_path, note_id):
    path, onset, reason = BAD[note_id]
    meta = pd.concat([_good_meta(), meta_rows([{"audio_path": path, "onset_sec": onset, "note_id": note_id,
                                                "split": "val"}])], ignore_index=True)
    with pytest.raises(FeaturizeError, match=re.escape(reason)) as info:
        featurize_all(meta, root, small_cfg(), CLASSES, tmp_path / "features", workers=1)
    assert f"(note_id {note_id})" in str(info.value) and path.split("/")[-1] in str(info.value)


def test_skip_lists_every_bad_item_counts_it_and_keeps_the_rest_intact(root, tmp_path):
    cfg = small_cfg(on_error="skip")
    summary = featurize_all(_with_bad(), root, cfg, CLASSES, tmp_path / "skip", workers=1)
    report = pd.read_csv(tmp_path / "skip" / "skipped.csv")
    assert sorted(report["note_id"]) == sorted(BAD)
    for _, row in report.iterrows():
        assert row["split"] == "train"
        assert BAD[row["note_id"]][2] in row["reason"], row["reason"]
    assert summary["skipped_total"] == len(BAD) and summary["splits"]["train"]["skipped"] == len(BAD)
    assert read_json(tmp_path / "skip" / "summary.json") == summary

    # what is kept is exactly what a clean run produces: same rows, same order, same bytes
    featurize_all(_good_meta(), root, cfg, CLASSES, tmp_path / "clean", workers=1)
    for split in ("train", "val", "test"):
        assert (tmp_path / "skip" / f"{split}.npy").read_bytes() == (tmp_path / "clean" / f"{split}.npy").read_bytes()
        assert (tmp_path / "skip" / f"{split}.csv").read_text() == (tmp_path / "clean" / f"{split}.csv").read_text()

    counts = write_data_counts(tmp_path / "skip", tmp_path / "metrics")
    assert counts["skipped"] == {"train": len(BAD), "val": 0, "test": 0} and counts["skipped_total"] == len(BAD)
    assert read_json(tmp_path / "metrics" / "data.json")["events"]["train"] == 6


def test_skipping_that_empties_a_class_in_a_split_is_refused(root, tmp_path):
    meta = _good_meta()
    harmonic_val = meta.index[(meta["split"] == "val") & (meta["label_category"] == "harmonic")]
    meta.loc[harmonic_val, "audio_path"] = "bad/random.wav"
    with pytest.raises(FeaturizeError, match=r"removed every \['harmonic'\] event from split 'val'"):
        featurize_all(meta, root, small_cfg(on_error="skip"), CLASSES, tmp_path / "features", workers=1)


def test_empty_class_in_a_split_is_refused_by_the_split_stage():
    df = pd.DataFrame({"split": ["train", "train", "val", "test", "test"],
                       "label_category": ["harmonic", "dead_note", "harmonic", "harmonic", "dead_note"]})
    with pytest.raises(SplitError, match=r"empty class\(es\) after splitting: dead_note in val\. Add data"):
        check_split_classes(df, ["harmonic", "dead_note"])


def test_many_events_in_one_file_become_bounded_tasks(tmp_path):
    df = meta_rows([{"audio_path": "long.wav", "onset_sec": i * 0.01} for i in range(1000)])
    tasks = file_tasks(df, tmp_path, max_events=64)
    assert max(len(t.positions) for t in tasks) == 64
    assert sorted(p for t in tasks for p in t.positions) == list(range(1000))
    assert all(t.onsets[0] is not None for t in tasks)  # still onset-windowed, not treated as snippets


def test_npy_row_writer_output_is_a_standard_npy(tmp_path):
    rows = np.random.default_rng(0).standard_normal((5, 2, 3, 4)).astype(np.float32)
    with NpyRowWriter(tmp_path / "w.npy", rows.shape) as w:
        for i in (3, 0, 4, 1, 2):  # any order
            w.write(i, rows[i])
        assert np.array_equal(w.read(3), rows[3])
        with pytest.raises(ValueError, match="does not fit"):
            w.write(0, rows[0, :1])
        with pytest.raises(IndexError):
            w.write(5, rows[0])
        with pytest.raises(IndexError):  # rows 4 and 5: the second does not exist
            w.write(4, rows[:2])
    np.save(tmp_path / "ref.npy", rows)
    assert (tmp_path / "w.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()
    assert np.array_equal(np.load(tmp_path / "w.npy", mmap_mode="r"), rows)


def test_npy_row_writer_writes_runs_of_rows_at_once(tmp_path):
    rows = np.random.default_rng(1).standard_normal((6, 2, 3)).astype(np.float32)
    with NpyRowWriter(tmp_path / "w.npy", rows.shape) as w:
        w.write(1, rows[1:4])
        w.write(0, rows[0])
        w.write(4, rows[4:])
    assert np.array_equal(np.load(tmp_path / "w.npy"), rows)


def test_worker_count_does_not_change_the_features(root, tmp_path):
    """Worker processes and in-process featurization write byte-identical caches."""
    cfg = small_cfg(on_error="skip")
    featurize_all(_with_bad("val"), root, cfg, CLASSES, tmp_path / "w1", workers=1)
    featurize_all(_with_bad("val"), root, cfg, CLASSES, tmp_path / "w2", workers=2)
    for name in sorted(os.listdir(tmp_path / "w1")):
        assert (tmp_path / "w1" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes(), name
