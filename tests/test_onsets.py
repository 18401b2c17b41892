"""Onset detection on synthetic multi-note recordings with known onsets (the ``fretlab predict`` timeline)."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from fretlab.audio import load_audio
from fretlab.params import Predict, Synthesize, load_params
from fretlab.predict import detect_onsets
from fretlab.synth import draw_note, make_guitar, render_file

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
