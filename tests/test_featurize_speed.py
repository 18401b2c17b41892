"""The fast paths of the feature cache keep its outputs: librosa-free mel filters, worker processes, plain-list
grouping, 16-bit PCM decoding, views instead of copies."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from fretlab.audio.features import FeatureExtractor, mel_filterbank
from fretlab.audio.loading import fit_length, load_audio, peak_normalize, prepare_windows
from fretlab.cache.featurize import FeaturizeError, _consecutive_runs, featurize_all, file_tasks
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
    code = "import sys, fretlab.cache.featurize, fretlab.audio.features; print('librosa' in sys.modules)"
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


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")  # 3 workers on a 2-core CI machine
def test_worker_processes_output_equals_in_process_and_restores_torch_threads(small_dataset, tmp_path):
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

    assert not multiprocessing.active_children()  # the DataLoader workers are gone


def test_a_failing_run_leaves_no_worker_processes(small_dataset, tmp_path):
    meta, root = small_dataset
    (root / "f05.wav").write_bytes(b"not audio")  # a test-split file: its chunks come after train and val
    with pytest.raises(FeaturizeError, match=r"f05\.wav"):
        featurize_all(meta, root, Featurize(n_mels=32, batch_size=2), CLASSES, tmp_path / "out", workers=2)
    assert not multiprocessing.active_children()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("fmt", "subtype"), [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("WAV", "PCM_24"),
                                              ("WAV", "FLOAT")])
def test_decoding_gives_libsndfiles_float_samples(tmp_path, fmt, subtype):
    """16-bit PCM is scaled here instead of by libsndfile (twice as fast): the samples must be the same bits."""
    rng = np.random.default_rng(0)
    wave = np.concatenate([[-1.0, 1.0 - 2**-15, 0.0], rng.uniform(-1, 1, 5000)]).reshape(-1, 1).repeat(2, axis=1)
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, wave, 44100, format=fmt, subtype=subtype)
    ours, _ = load_audio(path)
    ref = sf.read(path, dtype="float32", always_2d=True)[0].mean(axis=1)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours.view(np.uint32), ref.view(np.uint32))


def test_feature_extractor_matches_the_textbook_mel_product():
    """forward() multiplies frames x bins by the transposed filterbank; the result is mel_basis @ power."""
    cfg = Featurize()
    fe = FeatureExtractor(cfg)
    wave = torch.from_numpy(np.random.default_rng(0).standard_normal((3, cfg.n_samples)).astype(np.float32))
    with torch.inference_mode():
        ref = fe._to_db(fe.mel_basis @ fe.power_spectrogram(wave))
        np.testing.assert_allclose(fe(wave)[:, 0].numpy(), ref.numpy(), rtol=1e-5, atol=1e-4)


def test_windows_are_views_where_possible_and_written_in_place():
    cfg = Featurize()
    wave = np.random.default_rng(0).standard_normal(3 * cfg.n_samples).astype(np.float32)
    inside = fit_length(wave, cfg.n_samples, start=10)
    assert np.shares_memory(inside, wave)  # no copy when the window lies inside the audio
    edge = fit_length(wave, cfg.n_samples, start=len(wave) - 5)
    assert not np.shares_memory(edge, wave) and edge[5:].max() == 0 and np.array_equal(edge[:5], wave[-5:])
    onsets = [0.1, None, 2.9]
    out = np.full((3, cfg.n_samples), np.nan, dtype=np.float32)
    assert prepare_windows(wave, cfg.sample_rate, onsets, cfg, out=out) is out
    np.testing.assert_array_equal(out, prepare_windows(wave, cfg.sample_rate, onsets, cfg))
    assert np.array_equal(wave, np.random.default_rng(0).standard_normal(3 * cfg.n_samples).astype(np.float32))
    peak = peak_normalize(wave)
    np.testing.assert_array_equal(peak, (wave / np.abs(wave).max()).astype(np.float32))


@pytest.mark.parametrize(("positions", "runs"), [
    ([], []), ([7], [(0, 1)]), ([3, 4, 5], [(0, 3)]), ([0, 2, 3, 9, 10, 11, 4], [(0, 1), (1, 3), (3, 6), (6, 7)]),
    ([5, 4], [(0, 1), (1, 2)]),
])
def test_consecutive_runs(positions, runs):
    assert list(_consecutive_runs(positions)) == runs


def test_a_long_file_split_into_many_tasks_is_decoded_once(tmp_path, monkeypatch):
    """Consecutive tasks of one file reuse its decoded audio; the features are those of decoding it each time."""
    import fretlab.cache.featurize as featurize

    sr, seconds = 44100, 6.0
    t = np.arange(int(sr * seconds)) / sr
    sf.write(tmp_path / "long.wav", (0.4 * np.sin(2 * np.pi * 220 * t) * np.exp(-(t % 0.5) * 4)).astype(np.float32),
             sr, subtype="PCM_16")
    onsets = np.round(np.linspace(0.0, seconds - 1.2, 40), 3)
    meta = pd.DataFrame({"note_id": [f"e{i:02d}" for i in range(40)], "audio_path": "long.wav", "onset_sec": onsets,
                         "offset_sec": onsets + 0.5, "label_category": CLASSES[0], "split": "train"})
    cfg = Featurize(n_mels=32, batch_size=8)
    calls = []
    real = featurize.load_audio_up_to
    monkeypatch.setattr(featurize, "load_audio_up_to", lambda *a: calls.append(a[0]) or real(*a))
    featurize_all(meta, tmp_path, cfg, CLASSES, tmp_path / "cached", workers=1, splits=("train",))
    assert len(calls) == 1  # 5 tasks of 8 events, one decode
    tasks = file_tasks(meta, tmp_path, max_events=cfg.batch_size)
    assert len(tasks) == 5
    fresh = [featurize.process_chunk(FeatureExtractor(cfg), [task], featurize.load_audio_up_to) for task in tasks]
    assert len(calls) == 6
    np.testing.assert_array_equal(np.load(tmp_path / "cached/train.npy"), np.concatenate([r.features for r in fresh]))
