"""CRNN: Conv2d/BN/ReLU/MaxPool blocks (frequency pooled harder than time) → GRU → MLP head."""

from __future__ import annotations

import torch
from torch import nn

from fretlab.models.layers import AttentionPool, conv_block, mlp_head, pool_sequence, probe_shape
from fretlab.params import CRNNParams

__all__ = ["CRNN", "AttentionPool", "conv_block"]


class CRNN(nn.Module):
    """Input ``(B, channels, n_mels, frames)`` → class logits ``(B, n_classes)``."""

    def __init__(self, cfg: CRNNParams, in_shape: tuple[int, int, int], n_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
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
        self.head = mlp_head(out_dim, cfg.head_hidden, cfg.head_dropout, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv(x)  # (B, C, F, T)
        seq = z.permute(0, 3, 1, 2).flatten(2)  # (B, T, C*F)
        out, _ = self.rnn(seq)
        pooled = pool_sequence(out, self.cfg.time_pooling, self.attention, self.cfg.rnn_hidden, self.cfg.bidirectional)
        return self.head(pooled)
