"""The feature front end: peak-normalized event windows to log-mel (+ optional delta and RMS).

One ``nn.Module`` serves the featurize stage, training-time checks and ``fretlab predict``,
so features can never drift between training and inference.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fretlab.params import Featurize

TOP_DB = 80.0
AMIN = 1e-10


def delta(x: torch.Tensor, width: int = 9) -> torch.Tensor:
    """First-order regression delta along the last (time) axis, edge-replicated."""
    half = width // 2
    padded = nn.functional.pad(x.flatten(0, -2).unsqueeze(1), (half, half), mode="replicate")
    taps = torch.arange(-half, half + 1, dtype=x.dtype, device=x.device)
    kernel = (taps / (taps**2).sum()).view(1, 1, -1)  # conv1d correlates: d[t] = sum n*x[t+n] / sum n^2
    return nn.functional.conv1d(padded, kernel).view_as(x)


class FeatureExtractor(nn.Module):
    """Waveform batch ``(B, samples)`` → features ``(B, channels, n_mels, frames)``.

    Channel 0 is log-mel power in dB (clamped at ``TOP_DB`` below each example's peak);
    then the delta of the log-mel and the frame RMS in dB, when enabled.
    """

    def __init__(self, cfg: Featurize) -> None:
        import librosa  # deferred: worker processes only unpickle a built extractor

        super().__init__()
        self.cfg = cfg
        mel = librosa.filters.mel(
            sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
        )
        self.register_buffer("mel_basis", torch.from_numpy(mel).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    def _to_db(self, power: torch.Tensor) -> torch.Tensor:
        db = 10.0 * torch.log10(power.clamp_min(AMIN))
        peak = db.amax(dim=tuple(range(1, db.ndim)), keepdim=True)
        return torch.maximum(db, peak - TOP_DB)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            wave, self.cfg.n_fft, self.cfg.hop_length, window=self.window, center=True,
            pad_mode="constant", return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
        logmel = self._to_db(self.mel_basis @ power)
        channels = [logmel]
        if self.cfg.deltas:
            channels.append(delta(logmel))
        if self.cfg.rms:
            rms = self._to_db(power.mean(dim=1, keepdim=True))
            channels.append(rms.expand_as(logmel))
        return torch.stack(channels, dim=1)


@torch.inference_mode()
def extract(extractor: FeatureExtractor, windows: np.ndarray) -> np.ndarray:
    """Features for a batch of prepared windows, as a float32 NumPy array."""
    return extractor(torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))).numpy()
