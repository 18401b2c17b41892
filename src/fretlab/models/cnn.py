"""CNN after the UrbanSound8K classification project: conv blocks → mean over time → Conv1d → dense head.

Defaults reproduce that network: three Conv2d(3x3)/BN/ReLU/MaxPool/Dropout(0.2) blocks with 32/64/128
filters and (freq, time) pools (2,2), (2,2), (2,4); the mean over time; a Conv1d with 64 filters across
frequency; flatten; Linear 128 with Dropout 0.5; Linear to the classes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fretlab.models.layers import conv_block, mlp_head, probe_shape
from fretlab.params import CNNParams


class CNN(nn.Module):
    """Input ``(B, channels, n_mels, frames)`` → class logits ``(B, n_classes)``."""

    def __init__(self, cfg: CNNParams, in_shape: tuple[int, int, int], n_classes: int) -> None:
        super().__init__()
        chans = [in_shape[0], *cfg.channels]
        self.conv = nn.Sequential(*(
            conv_block(c_in, c_out, cfg.kernel_size, tuple(pool), cfg.dropout)
            for c_in, c_out, pool in zip(chans[:-1], chans[1:], cfg.pools, strict=True)
        ))
        c, f, _ = probe_shape(self.conv, in_shape, "model.cnn.pools")
        # the Conv1d runs along frequency, with the time-averaged conv channels as its input channels
        self.conv1d = nn.Sequential(
            nn.Conv1d(c, cfg.conv1d_channels, cfg.conv1d_kernel, padding=cfg.conv1d_kernel // 2),
            nn.ReLU(inplace=True),
        )
        flat = math.prod(probe_shape(self.conv1d, (c, f), "model.cnn.conv1d_kernel"))
        self.head = nn.Sequential(nn.Flatten(), mlp_head(flat, cfg.head_hidden, cfg.head_dropout, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv(x).mean(dim=-1)  # (B, C, F): mean over time
        return self.head(self.conv1d(z))
