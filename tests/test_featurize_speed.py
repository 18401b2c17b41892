"""The fast paths of the feature cache keep its outputs: librosa-free mel filters, threads, plain-list grouping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from fretlab.features import mel_filterbank
from fretlab.featurize import featurize_all, file_tasks
from fretlab.params import Featurize

CLASSES = ["general_note", "harmonic", "dead_note"]


@pytest.mark.parametrize(("sr", "n_fft", "n_mels", "fmin", "fmax"), [
    (22050, 1024, 64, 30.0, 11025.0), (16000, 512, 40, 0.0, None), (44100, 2048, 128, 50.0, 8000.0),
    (22050, 1024, 32, 1500.0, 9000.0),
])
def test_mel_filterbank_is_librosas(sr, n_fft, n_mels, fmin, fmax):
    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-9)


def test_featurize_does_not_import_librosa():
    """Importing librosa (and scipy.signal) costs ~2 s of CPU: more than featurizing the default data."""
    code = "import sys, fretlab.featurize, fretlab.features; print('librosa' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_file_tasks_group_by_file_keep_row_order_and_split_long_files():
    df = pd.DataFrame({
        "note_id": ["a", "b", "c", "d", "e", "f"],
        "audio_path": ["z.wav", "y.wav", "z.wav", "z.wav", "x.wav", "z.wav"],
        "onset_sec": [0.5, 0.0, 0.1, 0.9, 0.0, 0.3],
    })
    tasks = file_tasks(df, Path("/data"), snippets=True, max_events=2)
    assert [(Path(t.path).name, t.positions) for t in tasks] == [
        ("x.wav", [4]), ("y.wav", [1]), ("z.wav", [0, 2]), ("z.wav", [3, 5])]
    assert tasks[0].onsets == [None] and tasks[0].given == [0.0]  # one-event files are centre-cropped snippets
    assert tasks[2].note_ids == ["a", "c"] and tasks[2].onsets == [0.5, 0.1]
    assert all(t.error is None for t in tasks)
    assert file_tasks(df.iloc[:0], Path("/data")) == []


@pytest.fixture
def small_dataset(tmp_path) -> tuple[pd.DataFrame, Path]:
    rng = np.random.default_rng(0)
    rows = []
    for f in range(12):
        n_events = 1 if f % 3 else 3
        sr = 44100
        t = np.arange(int(sr * (0.8 if n_events == 1 else 2.5))) / sr
        tone = 0.5 * np.sin(2 * np.pi * (110 + 30 * f) * t) * np.exp(-3 * (t % 0.7))
        wave = tone + 0.01 * rng.standard_normal(t.size)
        sf.write(tmp_path / f"f{f:02d}.wav", wave.astype(np.float32), sr, subtype="PCM_16")
        for k in range(n_events):
            rows.append({"note_id": f"n{f:02d}_{k}", "audio_path": f"f{f:02d}.wav", "onset_sec": 0.7 * k,
                         "offset_sec": 0.7 * k + 0.5, "label_category": CLASSES[(f + k) % 3],
                         "split": ("train", "val", "test")[f % 3]})
    return pd.DataFrame(rows), tmp_path


def test_thread_pool_output_equals_single_thread_and_restores_torch_threads(small_dataset, tmp_path):
    meta, root = small_dataset
    cfg = Featurize(n_mels=32, batch_size=4)
    threads = torch.get_num_threads()
    featurize_all(meta, root, cfg, CLASSES, tmp_path / "one", workers=1)
    featurize_all(meta, root, cfg, CLASSES, tmp_path / "three", workers=3)
    assert torch.get_num_threads() == threads
    for split in ("train", "val", "test"):
        one, three = np.load(tmp_path / f"one/{split}.npy"), np.load(tmp_path / f"three/{split}.npy")
        assert one.shape[0] == (meta["split"] == split).sum() and np.isfinite(one).all()
        np.testing.assert_array_equal(one, three)
        assert (tmp_path / f"one/{split}.csv").read_text() == (tmp_path / f"three/{split}.csv").read_text()
