"""Frame-level librosa features of whole tracks: MFCC, chroma, spectral contrast, tonnetz, ZCR, log-mel, tempogram.

Every block is computed from one STFT (``cfg.n_fft``, ``cfg.hop_length``, centred), so the blocks
align frame by frame and the spectrogram is computed once instead of once per block; each block
equals the librosa feature called on the waveform with the same settings, to float32 rounding (tested).
"""

from __future__ import annotations

import librosa
import numpy as np

from fretlab.params import TrackFeatures

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")  # librosa's chroma bin order
N_CONTRAST = 7  # librosa spectral_contrast's default 6 bands + the residual band above them
N_TONNETZ = 6  # fifths, minor thirds, major thirds: (x, y) each


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
    raise ValueError(f"unknown track feature block {block!r}")


def feature_names(cfg: TrackFeatures) -> list[str]:
    """The name of every output dimension of :func:`track_frame_features`, in order."""
    return [name for block in cfg.features for name in _block_names(block, cfg)]


def feature_dim(cfg: TrackFeatures) -> int:
    """Dimensions per frame of :func:`track_frame_features`."""
    return len(feature_names(cfg))


def track_frame_features(wave: np.ndarray, sr: int, cfg: TrackFeatures) -> np.ndarray:
    """Stacked frame features of a mono waveform, float32 ``[frames, dims]`` (dims named by :func:`feature_names`)."""
    if sr != cfg.sample_rate:  # the blocks' frequency scales assume cfg.sample_rate; resample when loading
        raise ValueError(f"audio at {sr} Hz given for features configured at {cfg.sample_rate} Hz")
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    if wave.ndim != 1 or wave.size == 0:
        raise ValueError(f"track_frame_features needs a non-empty mono waveform, got shape {wave.shape}")
    magnitude = np.abs(librosa.stft(wave, n_fft=cfg.n_fft, hop_length=cfg.hop_length))
    power = magnitude**2
    chroma = None
    blocks = []
    for block in cfg.features:
        if block == "mfcc":
            mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr))  # librosa's 128 bands
            blocks.append(librosa.feature.mfcc(S=mel_db, n_mfcc=cfg.n_mfcc))
        elif block in ("chroma", "tonnetz"):
            if chroma is None:  # tonnetz is projected from this chroma: no second (CQT) pass
                chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=cfg.n_fft)
            blocks.append(chroma if block == "chroma" else librosa.feature.tonnetz(chroma=chroma))
        elif block == "contrast":
            blocks.append(librosa.feature.spectral_contrast(S=magnitude, sr=sr, n_fft=cfg.n_fft))
        elif block == "zcr":
            blocks.append(librosa.feature.zero_crossing_rate(wave, frame_length=cfg.n_fft, hop_length=cfg.hop_length))
        elif block == "logmel":
            blocks.append(librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr, n_mels=cfg.n_mels)))
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
