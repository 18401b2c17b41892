"""scripts/checkset_floor_probe.py: the share of log-mel cells at the floor, per window and per group."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fretlab.audio.features import TOP_DB, FeatureExtractor, extract
from fretlab.params import Featurize

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "checkset_floor_probe.py"


@pytest.fixture(scope="module")
def probe():
    spec = importlib.util.spec_from_file_location("checkset_floor_probe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_floor_share_counts_the_cells_at_peak_minus_top_db(probe):
    x = np.full((2, 1, 4, 5), -20.0, dtype=np.float32)
    x[0, 0, 0, 0] = 0.0  # the peak
    x[0, 0, 1, :3] = -TOP_DB  # 3 of 20 cells at the floor
    x[1, 0, 2, 2] = 10.0  # peak 10: a cell at -20 is 30 dB down, not at the floor
    assert probe.floor_share(x).tolist() == pytest.approx([3 / 20, 0.0])


def test_silence_after_a_short_tone_reaches_the_floor_and_noise_does_not(probe):
    feat = Featurize()
    n = round(feat.target_duration * feat.sample_rate)
    t = np.arange(n) / feat.sample_rate
    tone = np.where(t < 0.2, np.sin(2 * np.pi * 440 * t), 0.0)
    noisy = tone + 3e-2 * np.random.default_rng(0).standard_normal(n)  # hiss about 30 dB down
    shares = probe.floor_share(extract(FeatureExtractor(feat), np.stack([tone, noisy]).astype(np.float32)))
    assert shares[0] > 0.5 and shares[1] < 0.05


def test_summarize_per_key(probe):
    shares = np.array([0.0, 0.1, 0.2, 0.01])
    rows = probe.summarize(shares, pd.Series(["a", "a", "b", "b"]))
    assert rows == {"a": {"n": 2, "reaching_floor": 0.5, "mean_floor_cells": 0.05},
                    "b": {"n": 2, "reaching_floor": 0.5, "mean_floor_cells": 0.105}}
