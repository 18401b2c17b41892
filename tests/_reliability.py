"""Helpers for the reliability tests: tiny audio files, metadata tables and featurize settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from fretlab.params import Featurize

CLASSES = ["general_note", "harmonic", "dead_note"]


def tone(seconds: float = 1.0, sr: int = 16000, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    """A decaying sine, float32 mono."""
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t) * np.exp(-2 * t)).astype(np.float32)


def write_audio(path: Path, wave: np.ndarray, sr: int = 16000, **kwargs: Any) -> Path:
    """Write ``wave`` (frames or frames x channels) with soundfile; kwargs go to ``sf.write``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, sr, **kwargs)
    return path


def small_cfg(**overrides: Any) -> Featurize:
    """Fast featurize settings (16 kHz, half-second windows, 32 mels)."""
    base: dict[str, Any] = {"sample_rate": 16000, "target_duration": 0.5, "n_fft": 512, "hop_length": 256,
                            "n_mels": 32, "fmax": 8000.0, "batch_size": 8}
    return Featurize(**{**base, **overrides})


def meta_rows(rows: list[dict[str, Any]], split: str | None = None) -> pd.DataFrame:
    """A metadata table in the standard schema; each row needs at least ``audio_path``."""
    out = []
    for i, row in enumerate(rows):
        rec = {"note_id": f"n{i:03d}", "onset_sec": 0.0, "offset_sec": 0.3, "pitch_midi": 60,
               "expression_style": "NO", "label_category": CLASSES[i % len(CLASSES)], "group": f"g{i % 3}"}
        rec.update(row)
        if split is not None:
            rec.setdefault("split", split)
        out.append(rec)
    return pd.DataFrame(out)
