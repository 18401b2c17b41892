"""Take-level stroke statistics of a percussion performance: how even its timing and dynamics are.

A performance-assessment front end (the ``strokes`` block of ``featurize.tracks``): the strokes are
found with librosa's onset detector at a fine hop (4 ms at 16 kHz by default), and the take is
summarized in :data:`STROKE_NAMES` numbers. Two families:

- **inter-onset intervals (IOIs)**: spread of the log IOIs, how much consecutive IOIs change, the
  deviation of the IOIs of the rudiment's main subdivision (those within ``main_band`` of the median),
  the share of grace-note gaps (below ``grace_sec``);
- **a fitted grid**: every stroke that is not a grace gets a slot index (cumulative rounded IOI /
  slot period), and a local straight line through its ``grid_window`` neighbours gives the slot it
  should have hit; the residuals measure timing error (std, median absolute, of their differences)
  and the fitted local periods the tempo drift. This is what a teacher hears: early or late against
  the player's own pulse, not against a metronome;
- **levels**: the spread of each stroke's peak RMS in dB and of its changes, and the upper and
  lower percentile gaps (accent contrast, ghost notes).

The rudiment's own pattern (flams, drags, accents, rests) shapes all of them too; a model on top
learns which part is skill. One row per take, so the forest and the linear models use it as is.
"""

from __future__ import annotations

import librosa
import numpy as np

from fretlab.params import StrokeFeatures

STROKE_NAMES = (
    "strokes_per_sec", "log_ioi_std", "log_ioi_change_median", "log_ioi_change_mean", "main_ioi_dev_std",
    "main_ioi_dev_mean_abs", "grace_share", "ioi_median", "grid_residual_std", "grid_residual_mad",
    "grid_residual_change_std", "grid_period_cv", "level_db_std", "level_change_db_median", "level_db_p90_p50",
    "level_db_p50_p10",
)
EPS = 1e-6
RMS_FRAME_HOPS = 4  # a stroke's level: RMS over frames of this many hops
MIN_STROKES = 4  # fewer detected strokes: the timing statistics are undefined and set to 0


def detect_strokes(wave: np.ndarray, sr: int, cfg: StrokeFeatures) -> tuple[np.ndarray, np.ndarray]:
    """Stroke onset times (s) and peak levels (dB RMS within ``peak_sec`` after each onset, or up to the next)."""
    env = librosa.onset.onset_strength(y=wave, sr=sr, hop_length=cfg.hop_length, n_fft=cfg.n_fft, n_mels=cfg.n_mels)
    frames = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=cfg.hop_length,
                                        wait=max(1, round(cfg.wait_sec * sr / cfg.hop_length)), delta=cfg.delta,
                                        backtrack=True)  # to the energy minimum before the peak: the attack
    rms = librosa.feature.rms(y=wave, frame_length=RMS_FRAME_HOPS * cfg.hop_length, hop_length=cfg.hop_length)[0]
    frames = np.unique(frames[frames < len(rms)])  # two peaks can backtrack to one minimum: one stroke, IOI > 0
    reach = max(1, round(cfg.peak_sec * sr / cfg.hop_length))
    # a grace's level stops before the next stroke: RMS frames are 4 hops long and centred, so 2 hops before it
    ends = np.minimum(frames + reach, np.append(frames[1:] - RMS_FRAME_HOPS // 2, len(rms)))
    peaks = np.array([rms[f : max(e, f + 1)].max() for f, e in zip(frames, ends, strict=True)])
    return frames * cfg.hop_length / sr, 20.0 * np.log10(peaks + EPS)


def _grid_residuals(times: np.ndarray, period: float, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Residuals of ``times`` against a local straight-line grid, and the fitted local slot periods."""
    slots = np.concatenate(([0], np.cumsum(np.maximum(1, np.rint(np.diff(times) / period)))))
    residuals, periods = np.empty(len(times)), np.empty(len(times))
    for i in range(len(times)):
        lo, hi = max(0, i - window), min(len(times), i + window + 1)
        slope, intercept = np.polyfit(slots[lo:hi], times[lo:hi], 1)
        residuals[i] = times[i] - (slope * slots[i] + intercept)
        periods[i] = slope
    return residuals, periods


def stroke_statistics(wave: np.ndarray, sr: int, cfg: StrokeFeatures) -> np.ndarray:
    """The :data:`STROKE_NAMES` of one take, float32 ``[len(STROKE_NAMES)]``; 0 where too few strokes define one."""
    times, levels = detect_strokes(wave, sr, cfg)
    stats = dict.fromkeys(STROKE_NAMES, 0.0)
    if len(times) >= MIN_STROKES:
        ioi = np.diff(times)
        change = np.diff(np.log(ioi))
        median = float(np.median(ioi))
        main = ioi[(ioi > cfg.main_band[0] * median) & (ioi < cfg.main_band[1] * median)]
        dev = main / np.median(main) - 1.0 if len(main) > 2 else np.zeros(2)
        # a grace: a stroke just before the next one, or a soft one well inside the main slot before a louder one
        soft = (ioi < cfg.grace_slot_share * median) & (levels[:-1] < levels[1:] - cfg.grace_softer_db)
        primary = np.concatenate(((ioi >= cfg.grace_sec) & ~soft, [True]))
        stats.update(strokes_per_sec=len(times) / (len(wave) / sr), log_ioi_std=np.std(np.log(ioi)),
                     log_ioi_change_median=np.median(np.abs(change)), log_ioi_change_mean=np.mean(np.abs(change)),
                     main_ioi_dev_std=np.std(dev), main_ioi_dev_mean_abs=np.mean(np.abs(dev)),
                     grace_share=np.mean(~primary[:-1]), ioi_median=median)
        keep = times[primary]
        if len(keep) >= 2 * cfg.grid_window + 1:
            period = float(np.median(main)) if len(main) > 2 else median
            residuals, periods = _grid_residuals(keep, max(period, cfg.grace_sec), cfg.grid_window)
            stats.update(grid_residual_std=np.std(residuals), grid_residual_mad=np.median(np.abs(residuals)),
                         grid_residual_change_std=np.std(np.diff(residuals)),
                         grid_period_cv=np.std(periods) / max(np.mean(periods), EPS))
    if len(times) >= 2:
        p10, p50, p90 = np.percentile(levels, [10, 50, 90])
        stats.update(level_db_std=np.std(levels), level_change_db_median=np.median(np.abs(np.diff(levels))),
                     level_db_p90_p50=p90 - p50, level_db_p50_p10=p50 - p10)
    return np.array([stats[name] for name in STROKE_NAMES], dtype=np.float32)
