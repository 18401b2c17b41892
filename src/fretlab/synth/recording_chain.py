"""The recording chain of a synthetic guitar or bass file: amp, EQ, room and codec, drawn per file.

None of it is the class, so all of it is randomized (``synthesize.effects``, docs/synthesis.md
"Transfer to real recordings"). Built from ``pedalboard`` processors, not hand-written filters:
electric instruments may go through an amplifier (``Distortion`` then a cabinet low-pass), every
file gets a random tilt EQ (low shelf, one peak, high shelf), some a room (``Reverb``), and the
whole file (noise included) may be band-limited like a codec or a cheap microphone.
"""

from __future__ import annotations

import numpy as np
from pedalboard import (
    Distortion,
    HighpassFilter,
    HighShelfFilter,
    LowpassFilter,
    LowShelfFilter,
    PeakFilter,
    Pedalboard,
    Reverb,
)

from fretlab.params import SynthEffects

NYQUIST_GUARD = 0.45  # cutoffs stay below this share of the sample rate
CABINET_HZ = (2500.0, 6000.0)  # a guitar cabinet's speaker roll-off
LOW_SHELF_HZ = (80.0, 300.0)
PEAK_HZ = (250.0, 5000.0)
HIGH_SHELF_HZ = (2500.0, 8000.0)
HIGHPASS_HZ = (20.0, 100.0)


def _run(board: Pedalboard, x: np.ndarray, sr: int) -> np.ndarray:
    return board(x.astype(np.float32)[None, :], sr)[0].astype(np.float32)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _swell(n: int, sr: int, seconds: float) -> np.ndarray:
    """A linear fade-in over ``seconds``: a volume swell, or an amp's bloom, ahead of the distortion, which then
    holds the level flat, so a driven note may rise slowly and never decay inside the window, as a harmonic can."""
    return np.clip(np.arange(n, dtype=np.float32) / (seconds * sr), 0.0, 1.0)


def colour(x: np.ndarray, sr: int, electric: bool, cfg: SynthEffects, rng: np.random.Generator) -> np.ndarray:
    """Amplifier (electric only), tilt EQ and room on the instrument's signal, before noise is added."""
    if not cfg.enabled:
        return x
    top = NYQUIST_GUARD * sr
    stages = []
    if electric and rng.random() < cfg.drive_probability:
        peak = float(np.abs(x).max()) or 1.0
        x = x / peak  # the drive acts on a fixed input level: its setting, not the file's gain, sets the grit
        if cfg.swell_probability > 0 and rng.random() < cfg.swell_probability:
            x = x * _swell(len(x), sr, rng.uniform(*cfg.swell_ms) / 1000.0)
        stages += [Distortion(drive_db=float(rng.uniform(*cfg.drive_db))),
                   LowpassFilter(cutoff_frequency_hz=min(rng.uniform(*CABINET_HZ), top))]
    gain = cfg.eq_db
    stages += [
        HighpassFilter(cutoff_frequency_hz=_log_uniform(rng, *HIGHPASS_HZ)),
        LowShelfFilter(cutoff_frequency_hz=_log_uniform(rng, *LOW_SHELF_HZ), gain_db=float(rng.uniform(-gain, gain))),
        PeakFilter(cutoff_frequency_hz=_log_uniform(rng, *PEAK_HZ), gain_db=float(rng.uniform(-gain, gain)),
                   q=float(rng.uniform(0.7, 2.5))),
        HighShelfFilter(cutoff_frequency_hz=min(_log_uniform(rng, *HIGH_SHELF_HZ), top),
                        gain_db=float(rng.uniform(-gain, gain))),
    ]
    if rng.random() < cfg.reverb_probability:
        wet = float(rng.uniform(*cfg.reverb_wet))
        stages.append(Reverb(room_size=float(rng.uniform(*cfg.room_size)), wet_level=wet, dry_level=1.0 - wet,
                             damping=float(rng.uniform(0.2, 0.8)), width=0.0))
    return _run(Pedalboard(stages), x, sr)


def band_limit(x: np.ndarray, sr: int, cfg: SynthEffects, rng: np.random.Generator) -> np.ndarray:
    """A codec's or cheap microphone's low-pass over the whole file, noise included (some files)."""
    if not cfg.enabled or rng.random() >= cfg.lowpass_probability:
        return x
    cutoff = min(_log_uniform(rng, *cfg.lowpass_hz), NYQUIST_GUARD * sr)
    return _run(Pedalboard([LowpassFilter(cutoff_frequency_hz=cutoff)]), x, sr)
