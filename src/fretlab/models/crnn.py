"""CRNN: Conv2d/BN/ReLU/MaxPool blocks (frequency pooled harder than time) → GRU → MLP head."""

from __future__ import annotations

import math

import torch
from torch import nn

from fretlab.models.layers import (
    AttentionPool,
    conv_block,
    mlp_head,
    pool_sequence,
    pooled_width,
    probe_shape,
    run_rnn,
)
from fretlab.params import CRNNParams

__all__ = ["CRNN", "AttentionPool", "conv_block"]


class CRNN(nn.Module):
    """Input ``(B, channels, n_mels, frames)`` → class logits ``(B, n_classes)``."""

    def __init__(self, cfg: CRNNParams, in_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        if len(in_shape) == 1:  # sequences (B, T, D): one input channel, D frequency bins, time long enough to probe
            in_shape = (1, in_shape[0], math.prod(p[1] for p in cfg.pools))
        chans = [in_shape[0], *cfg.channels]
        self.conv = nn.Sequential(*(
            conv_block(c_in, c_out, cfg.kernel_size, tuple(pool), cfg.dropout)
            for c_in, c_out, pool in zip(chans[:-1], chans[1:], cfg.pools, strict=True)
        ))
        c, f, _ = probe_shape(self.conv, in_shape, "model.crnn.pools")  # the GRU input size follows from the convs
        self.rnn = nn.GRU(c * f, cfg.rnn_hidden, num_layers=cfg.rnn_layers, batch_first=True,
                          bidirectional=cfg.bidirectional)
        out_dim = cfg.rnn_hidden * (2 if cfg.bidirectional else 1)
        self.attention = AttentionPool(out_dim) if cfg.time_pooling == "attention" else None
        self.head = mlp_head(pooled_width(cfg.time_pooling, out_dim), cfg.head_hidden, cfg.head_dropout, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() == 3:  # (B, T, D) sequences → (B, 1, D, T) maps
            x = x.transpose(1, 2).unsqueeze(1)
        z, lengths = (self.conv(x), None) if lengths is None else self._conv_padded(x, lengths)  # (B, C, F, T)
        seq = z.permute(0, 3, 1, 2).flatten(2)  # (B, T, C*F)
        out = run_rnn(self.rnn, seq, lengths)
        pooled = pool_sequence(out, self.cfg.time_pooling, self.attention, self.cfg.rnn_hidden, self.cfg.bidirectional,
                               lengths)
        return self.head(pooled)

    def _conv_padded(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The conv blocks on a padded batch: before each block the steps past every clip's length are zeroed,
        so a clip sees the same zero border as it would alone; returns the maps and their valid lengths."""
        grow = 2 * (self.cfg.kernel_size // 2) - self.cfg.kernel_size + 1  # 'same' conv for odd kernels
        lengths = lengths.to(x.device)
        for block, (_, pt) in zip(self.conv, self.cfg.pools, strict=True):
            valid = torch.arange(x.shape[-1], device=x.device)[None, :] < lengths[:, None]
            x = block(x * valid[:, None, None, :])
            lengths = ((lengths + grow) // pt).clamp_min(1)  # each MaxPool floors; a clip keeps one step
        return x, lengths
