"""GRU-only model: each frame's features form one step of the sequence; no convolutions.

Takes fixed windows ``(B, channels, n_mels, frames)`` or variable-length sequences ``(B, T, D)`` with their
lengths (packed, so padding never reaches the GRU). ``frame_stride`` averages blocks of frames first: a
30-s track at ~21.5 frames/s is 650 steps, which a GRU learns slowly and runs slowly. Stacked with dropout
between layers and an optional LayerNorm on the pooled output, it is the track-attribute regressor of the
source project.
"""

from __future__ import annotations

import torch
from torch import nn

from fretlab.models.layers import AttentionPool, mlp_head, pool_sequence, pooled_width, run_rnn, stride_frames
from fretlab.params import GRUParams


class GRUNet(nn.Module):
    """Windows or sequences → the output vector ``(B, n_outputs)``."""

    def __init__(self, cfg: GRUParams, in_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        n_in = in_shape[0] if len(in_shape) == 1 else in_shape[0] * in_shape[1]  # (D,) or (C, mels, frames)
        # torch warns about (and ignores) dropout on a single-layer GRU, so pass it only when it applies
        self.rnn = nn.GRU(n_in, cfg.hidden, num_layers=cfg.layers, batch_first=True,
                          bidirectional=cfg.bidirectional, dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        out_dim = cfg.hidden * (2 if cfg.bidirectional else 1)
        self.attention = AttentionPool(out_dim) if cfg.time_pooling == "attention" else None
        pooled = pooled_width(cfg.time_pooling, out_dim)
        if cfg.layer_norm:  # only when asked: the guitar default's weights keep their names
            self.norm = nn.LayerNorm(pooled)
        self.head = mlp_head(pooled, cfg.head_hidden, cfg.head_dropout, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        seq = x if x.dim() == 3 else x.permute(0, 3, 1, 2).flatten(2)  # (B, T, features)
        seq, lengths = stride_frames(seq, lengths, self.cfg.frame_stride)
        out = run_rnn(self.rnn, seq, lengths)
        pooled = pool_sequence(out, self.cfg.time_pooling, self.attention, self.cfg.hidden, self.cfg.bidirectional,
                               lengths)
        if self.cfg.layer_norm:
            pooled = self.norm(pooled)
        return self.head(pooled)
