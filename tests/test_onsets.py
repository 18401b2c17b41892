"""Onset detection for the ``fretlab predict`` timeline: librosa's results without librosa, and recall
on synthetic multi-note recordings with known onsets."""

from __future__ import annotations

import subprocess
import sys

import librosa
import numpy as np
import pytest
import soundfile as sf

from fretlab.app.predict import detect_onsets, event_offsets
from fretlab.audio.loading import load_audio
from fretlab.audio.onsets import backtrack, detect_onset_frames, frame_rms, onset_strength, peak_pick
from fretlab.params import Predict, Synthesize, load_params
from fretlab.synth.guitar import draw_note, make_guitar, render_file

TOLERANCE_SEC = 0.05
CLASSES = ("general_note", "harmonic", "dead_note")


def _match(true: list[float], found: np.ndarray, tol: float) -> int:
    """One-to-one matches within ``tol`` (greedy by distance, as in onset-evaluation practice)."""
    pairs = sorted((abs(f - t), i, j) for i, t in enumerate(true) for j, f in enumerate(found) if abs(f - t) <= tol)
    used_t, used_f = set(), set()
    for _, i, j in pairs:
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
    return len(used_t)


def test_detected_onsets_are_within_50_ms_for_at_least_90_percent_of_notes(tmp_path):
    settings = load_params("params.yaml").predict  # the shipped defaults
    assert settings == Predict(), "params.yaml's predict section and the loader defaults disagree"
    cfg = Synthesize()  # the synthetic generator's default guitars, styles, noise and gain ranges
    sr = load_params("params.yaml").featurize.sample_rate
    rng = np.random.default_rng(2024)
    n_true = n_found = n_hit = 0
    for k in range(25):
        labels = rng.choice(CLASSES, size=int(rng.integers(3, 7)), p=[0.7, 0.15, 0.15])
        notes = [draw_note(str(label), cfg, rng) for label in labels]
        audio, times = render_file(notes, make_guitar(k, rng), cfg, int(rng.integers(2**31)))
        path = tmp_path / f"take{k}.wav"
        sf.write(path, audio, cfg.sample_rate, subtype="PCM_16")
        wave, _ = load_audio(path, sr)  # the path fretlab predict takes: decode, resample
        found, _ = detect_onsets(wave, sr, settings)
        true = [on for on, _ in times]
        n_true += len(true)
        n_found += len(found)
        n_hit += _match(true, found, TOLERANCE_SEC)
    recall, precision = n_hit / n_true, n_hit / max(n_found, 1)
    print(f"onsets: {n_true} true, {n_found} detected, recall@50ms {recall:.3f}, precision@50ms {precision:.3f}")
    assert n_true >= 100
    assert recall >= 0.90
    assert precision >= 0.75, "far more detections than notes: the timeline would be full of spurious events"


def _recording(seed: int, sr: int = 44100) -> tuple[np.ndarray, list[float]]:
    """A few synthetic guitar notes in one file, and their onsets."""
    rng = np.random.default_rng(seed)
    cfg = Synthesize()
    notes = [draw_note(str(label), cfg, rng) for label in rng.choice(CLASSES, size=5)]
    audio, times = render_file(notes, make_guitar(seed, rng), cfg, int(rng.integers(2**31)))
    return audio.astype(np.float32), [on for on, _ in times]


@pytest.mark.parametrize(("hop", "n_fft", "n_mels"), [(256, 2048, 128), (512, 2048, 128), (256, 1024, 128),
                                                      (256, 1024, 64)])
def test_onset_strength_is_librosas(hop, n_fft, n_mels):
    wave, _ = _recording(1)
    ours = onset_strength(wave, 44100, hop, n_fft, n_mels)
    ref = librosa.onset.onset_strength(y=wave, sr=44100, hop_length=hop, n_fft=n_fft, n_mels=n_mels)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=2e-3 * ref.max())


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("delta", "wait"), [(0.07, 5), (0.0, 0), (0.2, 12)])
def test_peak_picking_is_librosas(seed, delta, wait):
    rng = np.random.default_rng(seed)
    env = np.abs(rng.standard_normal(400)).cumsum() % 3.0  # ramps, plateaus and drops; ties included
    env[rng.integers(0, 400, 20)] = 0.0
    ref = librosa.onset.onset_detect(onset_envelope=env, sr=44100, hop_length=256, delta=delta, wait=wait)
    np.testing.assert_array_equal(detect_onset_frames(env, 44100, 256, delta, wait), ref)


@pytest.mark.parametrize(("args", "expected"), [
    ((1, 2, 1, 2, 0.0, 0), [0, 3, 5, 8]),
    ((1, 2, 1, 2, 0.0, 2), [0, 3, 8]),  # 5 is within `wait` of 3
    ((3, 2, 1, 2, 0.0, 0), [0, 8]),  # a 3-frame look-back: 3 and 5 see a larger neighbour
    ((1, 1, 1, 1, 0.0, 0), [0, 2, 3, 5, 7, 8]),  # post_max=1: no look-ahead, plateaus count
    ((1, 2, 1, 2, 2.5, 0), [8]),  # delta: only a peak 2.5 above its local mean
])
def test_peak_pick_edges_wait_and_delta(args, expected):
    x = np.array([5.0, 1.0, 1.0, 4.0, 1.0, 3.9, 1.0, 1.0, 6.0])
    assert peak_pick(x, *args).tolist() == expected
    assert librosa.util.peak_pick(x, pre_max=args[0], post_max=args[1], pre_avg=args[2], post_avg=args[3],
                                  delta=args[4], wait=args[5]).tolist() == expected


def test_backtrack_and_rms_are_librosas():
    wave, _ = _recording(2)
    env = librosa.onset.onset_strength(y=wave, sr=44100, hop_length=256)
    frames = librosa.onset.onset_detect(onset_envelope=env, sr=44100, hop_length=256)
    assert len(frames) >= 3
    np.testing.assert_array_equal(backtrack(frames, env), librosa.onset.onset_backtrack(frames, env))
    ref_rms = librosa.feature.rms(y=wave, frame_length=512, hop_length=256)[0]
    np.testing.assert_allclose(frame_rms(wave, 512, 256), ref_rms, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("backtracked", [False, True])
def test_detected_onsets_and_offsets_match_the_librosa_pipeline(backtracked):
    settings = Predict(onset_backtrack=backtracked)
    hop, sr = settings.onset_hop_length, 44100
    for seed in range(4):
        wave, _ = _recording(10 + seed)
        env = librosa.onset.onset_strength(y=wave, sr=sr, hop_length=hop, n_fft=settings.onset_n_fft,
                                           n_mels=settings.onset_n_mels)
        frames = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=hop, delta=settings.onset_delta,
                                            wait=round(settings.onset_wait_sec * sr / hop))
        if backtracked:
            frames = librosa.onset.onset_backtrack(frames, env)
        onsets, _ = detect_onsets(wave, sr, settings)
        np.testing.assert_allclose(onsets, librosa.frames_to_time(frames, sr=sr, hop_length=hop))
        offsets = event_offsets(wave, sr, onsets, settings)
        assert len(offsets) == len(onsets) and np.all(offsets >= onsets)
        assert np.all(offsets[:-1] <= onsets[1:] + 1e-9), "an event runs past the next onset"


def test_predict_imports_neither_librosa_nor_pandas():
    """librosa.onset pulls in numba and scipy.signal (~3 s per `fretlab predict` call), pandas ~0.3 s."""
    code = "import sys, fretlab.app.predict, fretlab.app.cli; print(sorted({'librosa', 'pandas'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("n_samples", [5000, 256 * 1024 * 2 - 1, 256 * 1024 * 2, 256 * 1024 * 2 + 300])
def test_onset_strength_does_not_depend_on_the_block_size(monkeypatch, n_samples):
    import fretlab.audio.onsets as onsets

    wave = np.random.default_rng(n_samples).standard_normal(n_samples).astype(np.float32)
    blocked = onset_strength(wave, 22050, 256)
    assert blocked.shape == (1 + n_samples // 256,)
    monkeypatch.setattr(onsets, "ONSET_BLOCK_FRAMES", 10**9)  # one block: the whole take
    np.testing.assert_array_equal(onset_strength(wave, 22050, 256), blocked)


def test_onset_strength_is_the_same_on_one_thread_or_several(monkeypatch):
    import os

    import fretlab.audio.onsets as onsets

    wave = np.random.default_rng(7).standard_normal(256 * 1024 * 5 + 77).astype(np.float32)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)))
    several = onset_strength(wave, 22050, 256)  # 6 blocks over 4 threads
    monkeypatch.setattr(onsets, "ONSET_MAX_THREADS", 1)
    np.testing.assert_array_equal(onset_strength(wave, 22050, 256), several)
