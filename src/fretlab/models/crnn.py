"""CRNN: Conv2d/BN/ReLU/MaxPool blocks (frequency pooled harder than time) → GRU → MLP head."""

from __future__ import annotations

import torch
from torch import nn

from fretlab.params import CRNNParams


def conv_block(c_in: int, c_out: int, kernel: int, pool: tuple[int, int], dropout: float) -> nn.Sequential:
    """Conv2d → BatchNorm → ReLU → MaxPool(freq, time) → Dropout."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(pool),
        nn.Dropout(dropout),
    )


class AttentionPool(nn.Module):
    """Learned softmax weights over time steps."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.score(seq), dim=1)
        return (weights * seq).sum(dim=1)


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
        with torch.no_grad():  # the RNN input size follows from the conv stack
            _, c, f, t = self.conv(torch.zeros(1, *in_shape)).shape
        if f < 1 or t < 1:
            raise ValueError(
                f"model.crnn.pools shrink a {in_shape[1]}x{in_shape[2]} input to {f}x{t}; use smaller pools"
            )
        self.rnn = nn.GRU(c * f, cfg.rnn_hidden, num_layers=cfg.rnn_layers, batch_first=True,
                          bidirectional=cfg.bidirectional)
        out_dim = cfg.rnn_hidden * (2 if cfg.bidirectional else 1)
        self.attention = AttentionPool(out_dim) if cfg.time_pooling == "attention" else None
        self.head = nn.Sequential(
            nn.Linear(out_dim, cfg.head_hidden), nn.ReLU(inplace=True), nn.Dropout(cfg.head_dropout),
            nn.Linear(cfg.head_hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv(x)  # (B, C, F, T)
        seq = z.permute(0, 3, 1, 2).flatten(2)  # (B, T, C*F)
        out, _ = self.rnn(seq)
        if self.cfg.time_pooling == "mean":
            pooled = out.mean(dim=1)
        elif self.attention is not None:
            pooled = self.attention(out)
        elif self.cfg.bidirectional:  # last step of the forward pass, first of the backward
            half = self.cfg.rnn_hidden
            pooled = torch.cat([out[:, -1, :half], out[:, 0, half:]], dim=1)
        else:
            pooled = out[:, -1]
        return self.head(pooled)
