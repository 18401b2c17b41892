"""fretlab.audio.strokes: the take-level stroke statistics of the rudiment recipe, on click trains of known timing."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from fretlab.audio.strokes import STROKE_NAMES, detect_strokes, stroke_statistics
from fretlab.audio.track_features import feature_names, track_frame_features
from fretlab.params import ParamsError, StrokeFeatures, TrackFeatures, parse_params

SR = 16000
CFG = StrokeFeatures()


def _hit(velocity: float) -> np.ndarray:
    """A drum-like stroke: a decaying 200 Hz tone plus a noise burst, peak ``velocity``."""
    t = np.arange(int(0.08 * SR)) / SR
    rng = np.random.default_rng(0)
    x = np.sin(2 * np.pi * 200 * t) * np.exp(-t / 0.02) + 0.5 * rng.standard_normal(t.size) * np.exp(-t / 0.004)
    return (velocity * x / np.abs(x).max()).astype(np.float32)


def _take(onsets: np.ndarray, velocities: np.ndarray, seconds: float) -> np.ndarray:
    y = np.zeros(int(seconds * SR), np.float32)
    for t, v in zip(onsets, velocities, strict=True):
        hit = _hit(v)
        i = round(t * SR)
        y[i : i + hit.size] += hit[: y.size - i]
    return y


def _stats(onsets: np.ndarray, velocities: np.ndarray | None = None) -> dict[str, float]:
    velocities = np.full(len(onsets), 0.5) if velocities is None else velocities
    return dict(zip(STROKE_NAMES, stroke_statistics(_take(onsets, velocities, onsets[-1] + 0.5), SR, CFG),
                    strict=True))


def test_every_stroke_of_a_click_train_is_found_within_a_hop() -> None:
    onsets = 0.3 + 0.125 * np.arange(40)
    times, levels = detect_strokes(_take(onsets, np.full(40, 0.5), 5.6), SR, CFG)
    assert len(times) == 40
    assert np.max(np.abs(times - onsets)) <= 1.5 * CFG.hop_length / SR
    assert np.ptp(levels) < 1.0  # equal strokes: equal levels


def test_grid_residuals_measure_the_timing_jitter() -> None:
    grid = 0.3 + 0.125 * np.arange(60)
    even = _stats(grid)
    sd = 0.010
    jittered = _stats(grid + np.random.default_rng(1).normal(0.0, sd, grid.size))
    assert even["grid_residual_std"] < 0.002  # a hop of quantization on a perfect grid
    assert jittered["grid_residual_std"] == pytest.approx(sd, rel=0.35)  # a local line absorbs a little of it
    assert jittered["main_ioi_dev_std"] > 5 * even["main_ioi_dev_std"]
    assert even["strokes_per_sec"] == pytest.approx(60 / (grid[-1] + 0.5), rel=0.02)


def test_a_steady_tempo_change_is_not_timing_error_but_drift_is_seen_in_the_periods() -> None:
    ioi = np.linspace(0.13, 0.12, 60)  # an accelerando: every stroke on the player's own moving pulse
    onsets = 0.3 + np.concatenate(([0.0], np.cumsum(ioi[:-1])))
    stats = _stats(onsets)
    assert stats["grid_residual_std"] < 0.002
    assert stats["grid_period_cv"] > 0.01


def test_graces_are_counted_and_kept_off_the_grid() -> None:
    grid = 0.3 + 0.2 * np.arange(30)
    graces = grid[::2] - 0.03  # a flam on every other stroke: a soft stroke 30 ms before the primary
    onsets = np.sort(np.concatenate((grid, graces)))
    velocities = np.where(np.isin(onsets, graces), 0.12, 0.5)
    stats = _stats(onsets, velocities)
    assert stats["grace_share"] == pytest.approx(15 / (len(onsets) - 1), abs=0.03)
    assert stats["grid_residual_std"] < 0.002  # the primaries alone sit on the grid
    assert stats["level_db_p50_p10"] > 6  # the soft graces


def test_accents_show_in_the_level_spread() -> None:
    grid = 0.3 + 0.125 * np.arange(40)
    flat, accented = _stats(grid), _stats(grid, np.where(np.arange(40) % 4 == 0, 0.9, 0.3))
    assert accented["level_db_std"] > flat["level_db_std"] + 3


def test_silence_gives_zeros_not_nan() -> None:
    stats = stroke_statistics(np.zeros(SR, np.float32), SR, CFG)
    assert stats.shape == (len(STROKE_NAMES),) and np.all(stats == 0)


def test_the_strokes_block_is_one_row_per_take_and_stands_alone() -> None:
    cfg = TrackFeatures(sample_rate=SR, features=["strokes"])
    take = _take(0.3 + 0.125 * np.arange(20), np.full(20, 0.5), 3.0)
    out = track_frame_features(take, SR, cfg)
    assert out.shape == (1, len(STROKE_NAMES)) and feature_names(cfg) == list(STROKE_NAMES)
    with pytest.raises(ValidationError, match=r"strokes.*alone"):
        TrackFeatures(features=["strokes", "logmel"])
    with pytest.raises(ParamsError, match=r"model\.name=crnn"):
        parse_params({"featurize": {"kind": "tracks", "tracks": {"features": ["strokes"]}}, "model": {"name": "crnn"}})
    with pytest.raises(ValidationError, match="main_band"):
        StrokeFeatures(main_band=(1.2, 1.6))
