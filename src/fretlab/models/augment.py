"""Training-time augmentation on log-mel features; an identity in eval mode."""

from __future__ import annotations

import torch
from torch import nn

from fretlab.params import Augment, Featurize


class FeatureAugment(nn.Module):
    """Random gain (a dB offset), circular-free time shift, and a low-level noise floor.

    Applies to channel 0 (log-mel dB) for gain and noise; the shift moves every channel.
    """

    def __init__(self, cfg: Augment, feat: Featurize) -> None:
        super().__init__()
        self.cfg = cfg
        self.max_shift = round(cfg.shift_ms / 1000 * feat.sample_rate / feat.hop_length)
        self.max_fade = cfg.fade_in_ms / 1000 * feat.sample_rate / feat.hop_length  # frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        b = x.shape[0]
        x = x.clone()
        if self.cfg.gate_probability > 0:  # first: the gate removes the recording's noise, not the augmentation's
            x[:, 0] = spectral_gate(x[:, 0], self.cfg.gate_probability, self.cfg.gate_db)
        if self.cfg.tilt_db > 0 or self.max_fade > 0:
            x[:, 0] = reshape_envelope(x[:, 0], self.cfg.tilt_db, self.max_fade)
        if self.cfg.gain_db > 0:
            gain = (torch.rand(b, 1, 1, device=x.device) * 2 - 1) * self.cfg.gain_db
            x[:, 0] = x[:, 0] + gain
        if self.cfg.noise_db is not None:
            noise_db = self.cfg.noise_db + 10 * torch.log10(torch.rand_like(x[:, 0]).clamp_min(1e-6))
            # adding noise power in the dB domain: log-sum of the two powers
            x[:, 0] = 10 * torch.log10(10 ** (x[:, 0] / 10) + 10 ** (noise_db / 10))
        if self.max_shift > 0:
            x = self._shift(x, torch.randint(-self.max_shift, self.max_shift + 1, (b,), device=x.device))
        for _ in range(self.cfg.n_masks):  # SpecAugment; draws no random numbers while both widths are 0
            if self.cfg.freq_mask > 0:
                x = spec_mask(x, self.cfg.freq_mask, dim=-2)
            if self.cfg.time_mask > 0:
                x = spec_mask(x, self.cfg.time_mask, dim=-1)
        return x

    @staticmethod
    def _shift(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """Shift each example in time, filling with its own minimum (the silence floor)."""
        t = x.shape[-1]
        idx = torch.arange(t, device=x.device)[None, :] - shifts[:, None]  # (B, T)
        valid = (idx >= 0) & (idx < t)
        gathered = torch.gather(x, -1, idx.clamp(0, t - 1)[:, None, None, :].expand_as(x))
        floor = x.amin(dim=(-2, -1), keepdim=True).expand_as(x)
        return torch.where(valid[:, None, None, :], gathered, floor)


def spectral_gate(logmel: torch.Tensor, probability: float, gate_db: tuple[float, float]) -> torch.Tensor:
    """Per example of ``(B, mels, frames)`` log-mel dB, with ``probability``: every cell more than a depth drawn
    from ``gate_db`` below the example's peak drops to the example's floor (its quietest cell).

    Synthetic files always carry hum and hiss; sampled and gated recordings have none, and a model that never saw
    a clean file reads its silence as a class cue (docs/synthesis.md).
    """
    b = logmel.shape[0]
    peak = logmel.amax(dim=(-2, -1), keepdim=True)
    floor = logmel.amin(dim=(-2, -1), keepdim=True)
    low, high = gate_db
    depth = low + torch.rand(b, 1, 1, device=logmel.device, dtype=logmel.dtype) * (high - low)
    chosen = torch.rand(b, 1, 1, device=logmel.device) < probability
    return torch.where(chosen & (logmel < peak - depth), floor, logmel)


def reshape_envelope(logmel: torch.Tensor, tilt_db: float, max_fade: float) -> torch.Tensor:
    """Per example of ``(B, mels, frames)`` log-mel dB: a linear dB ramp in time (-tilt_db..+tilt_db from the
    first to the last frame: a faster or slower decay) and a fade-in of 0..``max_fade`` frames starting at
    the onset (the first frame within 20 dB of the loudest). Values never drop below the example's floor.
    """
    b, _, t = logmel.shape
    frames = torch.arange(t, device=logmel.device, dtype=logmel.dtype)[None, :]
    curve = (torch.rand(b, 1, device=logmel.device) * 2 - 1) * tilt_db * frames / max(t - 1, 1)
    if max_fade > 0:
        energy = 10 * torch.log10((10 ** (logmel / 10)).sum(dim=1))  # (B, frames)
        onset = (energy > energy.amax(dim=1, keepdim=True) - 20).float().argmax(dim=1, keepdim=True)
        ramp = torch.rand(b, 1, device=logmel.device) * max_fade
        gain = ((frames - onset + 1) / ramp.clamp_min(1e-6)).clamp(1e-3, 1.0)
        curve = curve + torch.where(frames >= onset, 20 * torch.log10(gain), torch.zeros_like(gain))
    floor = logmel.amin(dim=(-2, -1), keepdim=True)
    return torch.maximum(logmel + curve[:, None, :], floor)


def crop_sequences(x: torch.Tensor, lengths: torch.Tensor,
                   min_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A random contiguous span of each padded sequence ``(B, T, D)``: between ``min_fraction`` and all of
    its ``lengths`` frames, anywhere in it. Returns the spans, left-aligned and padded, with their lengths.

    Track-level targets (tempo, key, loudness, ...) hold for any long span of the track, so each epoch
    shows the model new sequences with the same labels.
    """
    lengths = lengths.to(x.device)
    fraction = torch.empty(len(x), device=x.device).uniform_(min_fraction, 1.0)
    new = torch.minimum((lengths * fraction).ceil().long().clamp_min(1), lengths)
    start = (torch.rand(len(x), device=x.device) * (lengths - new + 1)).floor().long()
    steps = torch.arange(int(new.max()), device=x.device)
    index = (start[:, None] + steps[None, :]).clamp_max(x.shape[1] - 1)  # beyond a span: read as padding
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[2])), new


def spec_mask(x: torch.Tensor, max_width: int, dim: int) -> torch.Tensor:
    """SpecAugment mask: per example, a band of 0..``max_width`` bins along ``dim`` (-2 mel, -1 time) set to
    that example's per-channel mean (the value standardization maps near zero)."""
    b, size = x.shape[0], x.shape[dim]
    width = torch.randint(0, min(max_width, size) + 1, (b,), device=x.device)
    start = (torch.rand(b, device=x.device) * (size - width + 1)).long()
    pos = torch.arange(size, device=x.device)[None, :]
    band = (pos >= start[:, None]) & (pos < (start + width)[:, None])  # (B, size)
    band = band[:, None, :, None] if dim == -2 else band[:, None, None, :]
    fill = x.mean(dim=(-2, -1), keepdim=True)
    return torch.where(band, fill.expand_as(x), x)


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al. 2018): blend each example with a shuffled partner, lambda ~ Beta(alpha, alpha).

    Returns the mixed inputs, both label sets and lambda; the loss is
    ``lam * loss(y_a) + (1 - lam) * loss(y_b)``. Uses the global torch RNG (lambda) and ``generator``
    (partners), both saved in training checkpoints, so a resumed run continues the same stream.
    """
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(len(x), generator=generator).to(x.device)
    return lam * x + (1 - lam) * x[perm], y, y[perm], lam
