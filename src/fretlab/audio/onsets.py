"""Note onsets and offsets for ``fretlab predict``: librosa's spectral-flux detector, without librosa.

The algorithms are librosa's defaults (``onset.onset_strength``, ``onset.onset_detect`` with
``util.peak_pick``, ``onset.onset_backtrack``, ``feature.rms``), written on NumPy alone. Importing
``librosa.onset`` pulls in scipy.signal and numba and costs about 3 s per ``fretlab predict`` call,
more than the whole rest of the prediction; importing torch costs 1.4-2.3 s, which the ONNX engine
avoids. tests/test_onsets.py holds these functions to librosa's results.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fretlab.audio.mel import AMIN, TOP_DB, mel_filterbank
from fretlab.io import available_cores

ONSET_N_FFT = 2048  # librosa.onset.onset_strength defaults (predict.onset_n_fft picks fretlab's)
ONSET_N_MELS = 128

ONSET_BLOCK_FRAMES = 1024  # STFT frames per block: ~32 MB of buffers per thread instead of ~500 MB for a 3-min take
ONSET_MAX_THREADS = 4


def onset_strength(wave: np.ndarray, sr: int, hop_length: int, n_fft: int = ONSET_N_FFT,
                   n_mels: int = ONSET_N_MELS) -> np.ndarray:
    """Spectral flux of the log-mel spectrogram, one value per ``hop_length`` frame (librosa's algorithm;
    ``librosa.onset.onset_strength(y, sr, hop_length=..., n_fft=..., n_mels=...)``).

    Centred, zero-padded frames under a periodic Hann window; ``|rfft|^2`` is taken in float64,
    which NumPy's FFT ran twice as fast as float32 (0.27 vs 0.50 s for 15k frames of 2048 on the
    2-core CPU), and projected onto the mels in float32, ``ONSET_BLOCK_FRAMES`` frames at a time.
    NumPy's FFT is single-threaded but releases the GIL, so the blocks are shared out between one
    thread per core (0.64 instead of 0.96 s for a 3-minute take on 2 cores).
    """
    x = np.ascontiguousarray(wave, dtype=np.float32)
    padded = np.pad(x, (n_fft // 2, n_fft // 2))
    frames = sliding_window_view(padded, n_fft)[::hop_length]  # a view: no copy of the frames
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann, float64
    mel_basis_t = np.ascontiguousarray(mel_filterbank(sr, n_fft, n_mels, 0.0, sr / 2).T)
    mel = np.empty((len(frames), n_mels), dtype=np.float32)
    n_blocks = -(-len(frames) // ONSET_BLOCK_FRAMES)
    workers = max(1, min(available_cores(), ONSET_MAX_THREADS, n_blocks))
    # whole blocks per thread: the same blocks, so the same float32 results, as one thread would compute
    bounds = [min(len(frames), round(i * n_blocks / workers) * ONSET_BLOCK_FRAMES) for i in range(workers + 1)]
    parts = [(frames[lo:hi], window, mel_basis_t, mel[lo:hi]) for lo, hi in itertools.pairwise(bounds)]
    if workers == 1:
        _mel_power(*parts[0])
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda part: _mel_power(*part), parts))
    db = 10.0 * np.log10(np.maximum(mel, np.float32(AMIN)))
    db = np.maximum(db, db.max() - np.float32(TOP_DB))
    flux = np.maximum(db[1:] - db[:-1], 0.0).mean(axis=1)
    pad = 1 + n_fft // (2 * hop_length)  # lag 1, plus the centred frames' half-window shift
    return np.concatenate([np.zeros(pad, dtype=flux.dtype), flux])[: db.shape[0]]


def _mel_power(frames: np.ndarray, window: np.ndarray, mel_basis_t: np.ndarray, out: np.ndarray) -> None:
    """``out = |rfft(frames * window)|^2 @ mel_basis_t``, ``ONSET_BLOCK_FRAMES`` frames at a time in reused buffers."""
    bins, block = mel_basis_t.shape[0], min(ONSET_BLOCK_FRAMES, len(frames))
    windowed = np.empty((block, frames.shape[1]))
    spec = np.empty((block, bins), dtype=np.complex128)
    power = np.empty((block, bins), dtype=np.float32)
    for start in range(0, len(frames), block):
        n = min(block, len(frames) - start)
        np.multiply(frames[start : start + n], window, out=windowed[:n])
        np.fft.rfft(windowed[:n], axis=-1, out=spec[:n])
        parts = np.square(spec[:n].view(np.float64).reshape(n, bins, 2))  # re^2, im^2
        np.add(parts[..., 0], parts[..., 1], out=power[:n], casting="unsafe")
        np.matmul(power[:n], mel_basis_t, out=out[start : start + n])


def _window_reduce(x: np.ndarray, before: int, after: int, reduce: str) -> np.ndarray:
    """``reduce`` (max or mean) of ``x[max(0, n - before) : n + after]`` for every n, truncated at the edges."""
    n = len(x)
    if reduce == "max":
        padded = np.concatenate([np.full(before, -np.inf), x, np.full(after - 1, -np.inf)])
        return sliding_window_view(padded, before + after).max(axis=1)
    csum = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    lo = np.maximum(np.arange(n) - before, 0)
    hi = np.minimum(np.arange(n) + after, n)
    return (csum[hi] - csum[lo]) / (hi - lo)


def peak_pick(x: np.ndarray, pre_max: int, post_max: int, pre_avg: int, post_avg: int, delta: float,
              wait: int) -> np.ndarray:
    """Frames that are the local maximum and ``delta`` above the local mean, ``wait`` frames apart.

    Same rule as ``librosa.util.peak_pick``; the windows are computed for all frames at once and
    only the ``wait`` rule, which depends on the previous accepted peak, walks the candidates.
    """
    local_max = _window_reduce(x, pre_max, post_max, "max")
    local_avg = _window_reduce(x, pre_avg, post_avg, "mean")
    candidates = np.flatnonzero((x == local_max) & (x >= local_avg + delta))
    peaks, next_allowed = [], 0
    for frame in candidates:
        if frame >= next_allowed:
            peaks.append(frame)
            next_allowed = frame + wait + 1
    return np.asarray(peaks, dtype=int)


def detect_onset_frames(envelope: np.ndarray, sr: int, hop_length: int, delta: float, wait: int) -> np.ndarray:
    """Onset frames of an onset-strength envelope, with ``librosa.onset.onset_detect``'s default windows."""
    env = envelope - envelope.min() if len(envelope) else envelope
    env = env / (env.max() + np.finfo(env.dtype).tiny) if len(env) else env
    if not env.any() or not np.all(np.isfinite(env)):
        return np.zeros(0, dtype=int)
    def frames(sec: float) -> int:  # librosa's rounding: floor-divide, then ceil
        return int(np.ceil(sec * sr // hop_length))

    return peak_pick(env, pre_max=frames(0.03), post_max=frames(0.0) + 1, pre_avg=frames(0.10),
                     post_avg=frames(0.10) + 1, delta=delta, wait=wait)


def backtrack(frames: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Move each onset back to the nearest preceding local minimum of ``energy`` (librosa's rule)."""
    minima = np.flatnonzero((energy[1:-1] <= energy[:-2]) & (energy[1:-1] < energy[2:])) + 1
    minima = np.concatenate([[0], minima])
    return minima[np.clip(np.searchsorted(minima, frames, side="right") - 1, 0, None)]


def frame_rms(wave: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """RMS of centred, zero-padded frames (``librosa.feature.rms(center=True, pad_mode="constant")``)."""
    half = frame_length // 2
    padded = np.pad(np.asarray(wave, dtype=np.float32), (half, half))
    frames = sliding_window_view(padded, frame_length)[::hop_length]
    return np.sqrt(np.mean(np.abs(frames) ** 2, axis=1, dtype=np.float32))
