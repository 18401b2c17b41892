"""GRU-only baseline: each frame's features (channels × mels) form one step of the sequence; no convolutions."""

from __future__ import annotations

import torch
from torch import nn

from fretlab.models.layers import AttentionPool, mlp_head, pool_sequence
from fretlab.params import GRUParams


class GRUNet(nn.Module):
    """Input ``(B, channels, n_mels, frames)`` → class logits ``(B, n_classes)``."""

    def __init__(self, cfg: GRUParams, in_shape: tuple[int, int, int], n_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        c, mels, _ = in_shape
        # torch warns about (and ignores) dropout on a single-layer GRU, so pass it only when it applies
        self.rnn = nn.GRU(c * mels, cfg.hidden, num_layers=cfg.layers, batch_first=True,
                          bidirectional=cfg.bidirectional, dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        out_dim = cfg.hidden * (2 if cfg.bidirectional else 1)
        self.attention = AttentionPool(out_dim) if cfg.time_pooling == "attention" else None
        self.head = mlp_head(out_dim, cfg.head_hidden, cfg.head_dropout, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.permute(0, 3, 1, 2).flatten(2)  # (B, T, C*mels)
        out, _ = self.rnn(seq)
        return self.head(pool_sequence(out, self.cfg.time_pooling, self.attention, self.cfg.hidden,
                                       self.cfg.bidirectional))
