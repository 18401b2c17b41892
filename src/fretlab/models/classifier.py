"""The trainable classifier: input standardization, train-only augmentation, and the network.

Wrapping all three in one module means training, evaluation and ``fretlab predict`` run the
same forward pass on the same features.
"""

from __future__ import annotations

import torch
from torch import nn

from fretlab.models import build_model
from fretlab.models.augment import FeatureAugment
from fretlab.params import Params


class Classifier(nn.Module):
    """Features ``(B, C, mels, frames)`` → logits; augmentation only in training mode."""

    def __init__(self, params: Params, n_classes: int) -> None:
        super().__init__()
        feat = params.featurize
        in_shape = (feat.n_channels, feat.n_mels, feat.n_frames)
        self.register_buffer("mean", torch.zeros(1, feat.n_channels, 1, 1))
        self.register_buffer("std", torch.ones(1, feat.n_channels, 1, 1))
        self.augment = FeatureAugment(params.train.augment, feat)
        self.net = build_model(params.model, in_shape, n_classes)

    @torch.no_grad()
    def fit_standardization(self, x: torch.Tensor) -> None:
        """Per-channel mean and std from training features (chunked, float64 accumulation)."""
        dims = (0, 2, 3)
        n = 0
        total = torch.zeros(x.shape[1], dtype=torch.float64)
        sq = torch.zeros_like(total)
        for start in range(0, len(x), 512):
            chunk = x[start : start + 512].to(torch.float64)
            total += chunk.sum(dim=dims).cpu()
            sq += chunk.square().sum(dim=dims).cpu()
            n += chunk.numel() // x.shape[1]
        mean = total / n
        std = (sq / n - mean.square()).clamp_min(1e-12).sqrt()
        self.mean.copy_(mean.view_as(self.mean))
        self.std.copy_(std.view_as(self.std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.augment(x)
        return self.net((x - self.mean) / self.std)
