"""``fretlab predict TAKE --plot timeline.png``: the take's log-mel spectrogram with each note's span and class.

The spectrogram is the model's own front end (centred, zero-padded frames, periodic Hann window,
``featurize`` FFT size, hop and mel bands, dB clamped ``TOP_DB`` below the peak), written on NumPy
so that the ONNX engine draws it without importing torch. matplotlib (Agg) is imported only when a
plot is asked for: the CLI imports this module lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fretlab.audio.mel import AMIN, TOP_DB, mel_filterbank
from fretlab.io import atomic_path
from fretlab.params import Featurize

BLOCK_FRAMES = 2048  # STFT frames per block: bounded memory for long takes
INCH_PER_SEC = 0.6  # figure width grows with the take, so note labels stay readable ...
WIDTH_IN = (8.0, 60.0)  # ... within these bounds (inches)
HEIGHT_IN = 4.0
SPAN_ALPHA = 0.3
DPI = 100


def log_mel_db(wave: np.ndarray, cfg: Featurize) -> np.ndarray:
    """Log-mel power in dB, ``(n_mels, frames)``, as the feature front end computes it for the whole clip."""
    x = np.pad(np.asarray(wave, dtype=np.float32), (cfg.n_fft // 2, cfg.n_fft // 2))
    frames = sliding_window_view(x, cfg.n_fft)[:: cfg.hop_length]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.n_fft) / cfg.n_fft)).astype(np.float32)
    basis_t = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax).T
    mel = np.empty((len(frames), cfg.n_mels), dtype=np.float32)
    for start in range(0, len(frames), BLOCK_FRAMES):
        spec = np.fft.rfft(frames[start : start + BLOCK_FRAMES] * window, axis=-1)
        mel[start : start + BLOCK_FRAMES] = (spec.real**2 + spec.imag**2).astype(np.float32) @ basis_t
    db = 10.0 * np.log10(np.maximum(mel, np.float32(AMIN)))
    return np.maximum(db, db.max() - np.float32(TOP_DB)).T


def note_spans(result: dict[str, Any]) -> list[tuple[float, float, str, float]]:
    """``(onset, offset, label, confidence)`` per detected note; a note-mode result spans the whole clip."""
    if result["mode"] == "timeline":
        return [(e["onset_sec"], e["offset_sec"], e["label"], e["confidence"]) for e in result["events"]]
    return [(0.0, result["duration_sec"], result["label"], result["confidence"])]


def plot_timeline(wave: np.ndarray, cfg: Featurize, result: dict[str, Any], path: str | Path) -> None:
    """Draw the log-mel spectrogram of ``wave`` with each note's span coloured by class, labelled with confidence."""
    import matplotlib

    matplotlib.use("Agg")  # headless: the figure goes to a file only
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    db = log_mel_db(wave, cfg)
    duration = len(wave) / cfg.sample_rate
    classes = list(result["classes"])
    palette = plt.get_cmap("tab10")
    colours = {c: palette(i % palette.N) for i, c in enumerate(classes)}
    width = float(np.clip(duration * INCH_PER_SEC, *WIDTH_IN))
    fig, ax = plt.subplots(figsize=(width, HEIGHT_IN))
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", extent=(0.0, duration, 0, cfg.n_mels),
              interpolation="nearest")
    for onset, offset, label, confidence in note_spans(result):
        ax.axvspan(onset, max(offset, onset), color=colours[label], alpha=SPAN_ALPHA, lw=0)
        ax.axvline(onset, color=colours[label], lw=1.2)  # a zero-length note is still visible
        ax.text(onset, cfg.n_mels * 0.98, f" {label} {confidence:.2f}", rotation=90, va="top", ha="left",
                fontsize=7, color="white")
    ax.set_xlim(0.0, duration)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"mel band ({cfg.n_mels})")
    n_notes = len(note_spans(result))
    ax.set_title(f"{Path(str(result['file'])).name}: {n_notes} note(s), {result['mode']} mode")
    ax.legend(handles=[Patch(color=colours[c], label=c) for c in classes], loc="upper right", fontsize=7,
              framealpha=0.8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png")
    plt.close(fig)
