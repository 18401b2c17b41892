"""Frame-level features of whole tracks: MFCC, chroma, spectral contrast, tonnetz, ZCR, log-mel, tempogram, harmony.

Every block is computed from one STFT (``cfg.n_fft``, ``cfg.hop_length``, centred), so the blocks
align frame by frame and the spectrogram is computed once instead of once per block; each librosa
block equals the librosa feature called on the waveform with the same settings, to float32 rounding
(tested). The pitch blocks (chroma, tonnetz, harmony) may take a longer FFT (``cfg.chroma_n_fft``,
same hop, so the same frames): at 22 050 Hz an FFT of 2048 resolves 10.8 Hz, coarser than a
semitone below ~180 Hz, where bass and chord roots sit.
"""

from __future__ import annotations

import librosa
import numpy as np
from scipy.ndimage import uniform_filter1d

from fretlab.audio.strokes import STROKE_NAMES, stroke_statistics
from fretlab.params import TrackFeatures

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")  # librosa's chroma bin order
N_CONTRAST = 7  # librosa spectral_contrast's default 6 bands + the residual band above them
N_TONNETZ = 6  # fifths, minor thirds, major thirds: (x, y) each
# Krumhansl & Kessler (1982) probe-tone key profiles, tonic first: how well each pitch class fits a key
KEY_PROFILE_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KEY_PROFILE_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
MAJOR_TRIAD, MINOR_TRIAD = (0, 4, 7), (0, 3, 7)  # semitones above the root
HARMONY_NAMES = ("harmony_major_triad", "harmony_minor_triad", "harmony_key_major", "harmony_key_minor")


def _block_names(block: str, cfg: TrackFeatures) -> list[str]:
    if block == "mfcc":
        return [f"mfcc_{i:02d}" for i in range(cfg.n_mfcc)]
    if block == "chroma":
        return [f"chroma_{p}" for p in PITCH_CLASSES]
    if block == "contrast":
        return [f"contrast_{i}" for i in range(N_CONTRAST)]
    if block == "tonnetz":
        return [f"tonnetz_{i}" for i in range(N_TONNETZ)]
    if block == "zcr":
        return ["zcr"]
    if block == "logmel":
        return [f"logmel_{i:02d}" for i in range(cfg.n_mels)]
    if block == "tempogram":
        return [f"tempogram_lag{i:02d}" for i in range(1, cfg.tempogram_lags + 1)]
    if block == "harmony":
        return list(HARMONY_NAMES)
    if block == "strokes":
        return list(STROKE_NAMES)
    raise ValueError(f"unknown track feature block {block!r}")


def feature_names(cfg: TrackFeatures) -> list[str]:
    """The name of every output dimension of :func:`track_frame_features`, in order."""
    return [name for block in cfg.features for name in _block_names(block, cfg)]


def feature_dim(cfg: TrackFeatures) -> int:
    """Dimensions per frame of :func:`track_frame_features`."""
    return len(feature_names(cfg))


def track_frame_features(wave: np.ndarray, sr: int, cfg: TrackFeatures) -> np.ndarray:
    """Stacked frame features of a mono waveform, float32 ``[frames, dims]`` (dims named by :func:`feature_names`).

    The ``strokes`` block is take-level: one row, ``[1, len(STROKE_NAMES)]``.
    """
    if sr != cfg.sample_rate:  # the blocks' frequency scales assume cfg.sample_rate; resample when loading
        raise ValueError(f"audio at {sr} Hz given for features configured at {cfg.sample_rate} Hz")
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    if wave.ndim != 1 or wave.size == 0:
        raise ValueError(f"track_frame_features needs a non-empty mono waveform, got shape {wave.shape}")
    if cfg.take_level:
        return stroke_statistics(wave, sr, cfg.strokes)[None, :]
    magnitude = np.abs(librosa.stft(wave, n_fft=cfg.n_fft, hop_length=cfg.hop_length))
    power = magnitude**2
    chroma = None
    chroma_n_fft = cfg.chroma_n_fft or cfg.n_fft
    blocks = []
    for block in cfg.features:
        if block == "mfcc":
            mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr))  # librosa's 128 bands
            blocks.append(librosa.feature.mfcc(S=mel_db, n_mfcc=cfg.n_mfcc))
        elif block in ("chroma", "tonnetz", "harmony"):
            if chroma is None:  # tonnetz and harmony are projected from this chroma: no second (CQT) pass
                chroma = _chroma(wave, sr, power, chroma_n_fft, cfg.hop_length)
            if block == "chroma":
                blocks.append(chroma)
            else:
                blocks.append(librosa.feature.tonnetz(chroma=chroma) if block == "tonnetz" else harmony(chroma, cfg))
        elif block == "contrast":
            blocks.append(librosa.feature.spectral_contrast(S=magnitude, sr=sr, n_fft=cfg.n_fft))
        elif block == "zcr":
            blocks.append(librosa.feature.zero_crossing_rate(wave, frame_length=cfg.n_fft, hop_length=cfg.hop_length))
        elif block == "logmel":
            mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)
            blocks.append(librosa.power_to_db(mel))  # librosa's top_db of 80 dB below the peak
        elif block == "tempogram":
            blocks.append(_tempogram(power, sr, cfg))
        else:
            raise ValueError(f"unknown track feature block {block!r}")
    frames = min(b.shape[-1] for b in blocks)  # zcr frames its own (edge-padded) signal: guard an off-by-one
    return np.ascontiguousarray(np.concatenate([b[:, :frames] for b in blocks], axis=0).T, dtype=np.float32)


def _tempogram(power: np.ndarray, sr: int, cfg: TrackFeatures) -> np.ndarray:
    """Local autocorrelation of the onset-strength envelope (librosa's tempogram) at lags 1..``tempogram_lags``
    frames: a rhythm descriptor, periodic where the beat is. Lag 0 (always 1) is dropped."""
    envelope = librosa.onset.onset_strength(S=librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr)),
                                            sr=sr)
    gram = librosa.feature.tempogram(onset_envelope=envelope, sr=sr, hop_length=cfg.hop_length,
                                     win_length=cfg.tempogram_window)
    return gram[1 : cfg.tempogram_lags + 1]


def _chroma(wave: np.ndarray, sr: int, power: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """librosa's STFT chroma, from the shared power spectrogram or from its own FFT of ``n_fft``."""
    if n_fft != power.shape[0] * 2 - 2:
        power = np.abs(librosa.stft(wave, n_fft=n_fft, hop_length=hop_length)) ** 2
    return librosa.feature.chroma_stft(S=power, sr=sr, n_fft=n_fft)


def _rotations(pattern: np.ndarray) -> np.ndarray:
    """``(12, 12)``: ``pattern`` with its first entry on each pitch class, z-scored, over the root axis."""
    rows = np.stack([np.roll(pattern, r) for r in range(12)]).astype(np.float64)
    rows -= rows.mean(axis=1, keepdims=True)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _best_correlation(chroma: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """Pearson correlation of each chroma frame ``(12, frames)`` with its best-fitting rotation of ``patterns``."""
    centred = chroma - chroma.mean(axis=0, keepdims=True)
    norm = np.linalg.norm(centred, axis=0, keepdims=True)
    corr = patterns @ (centred / np.where(norm > 0, norm, 1.0))  # silent (flat) frames correlate 0
    return corr.max(axis=0)


def _template(intervals: tuple[int, ...]) -> np.ndarray:
    pattern = np.zeros(12)
    pattern[list(intervals)] = 1.0
    return pattern


def harmony(chroma: np.ndarray, cfg: TrackFeatures) -> np.ndarray:
    """Transposition-invariant mode descriptors ``(4, frames)`` from a chroma ``(12, frames)``.

    Rows: the best correlation of the frame with a major triad and with a minor triad (any root:
    chord-template matching, Fujishima 1999), and of the chroma averaged over ``cfg.key_window``
    frames with the Krumhansl-Kessler major and minor key profiles (any tonic: Krumhansl's key
    finding). Raw chroma names pitch classes, so a model must learn major vs minor once per key
    from the data; these rows hold the mode itself, which relative keys (same notes) only differ
    in by emphasis.
    """
    chroma = np.asarray(chroma, dtype=np.float64)
    window = min(cfg.key_window, chroma.shape[1])
    local = uniform_filter1d(chroma, size=window, axis=1, mode="nearest")
    rows = [_best_correlation(chroma, _rotations(_template(MAJOR_TRIAD))),
            _best_correlation(chroma, _rotations(_template(MINOR_TRIAD))),
            _best_correlation(local, _rotations(np.array(KEY_PROFILE_MAJOR))),
            _best_correlation(local, _rotations(np.array(KEY_PROFILE_MINOR)))]
    return np.stack(rows).astype(np.float32)
