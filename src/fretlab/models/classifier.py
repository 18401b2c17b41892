"""The trainable models: input standardization, train-only augmentation, and the network.

Wrapping all three in one module means training, evaluation and ``fretlab predict`` run the
same forward pass on the same features. :class:`Classifier` takes fixed event windows;
:class:`SequenceModel` takes variable-length frame sequences with their lengths.
"""

from __future__ import annotations

import torch
from torch import nn

from fretlab.models import build_model
from fretlab.models.augment import FeatureAugment, crop_sequences
from fretlab.params import Params
from fretlab.tasks.targets import TargetSpec, n_outputs


class Classifier(nn.Module):
    """Features ``(B, C, mels, frames)`` → the output vector (class logits, target values); augmentation
    only in training mode."""

    def __init__(self, params: Params, n_classes: int, layout: list[tuple[str, str, int, int]] | None = None) -> None:
        super().__init__()
        feat = params.featurize
        in_shape = (feat.n_channels, feat.n_mels, feat.n_frames)
        self.register_buffer("mean", torch.zeros(1, feat.n_channels, 1, 1))
        self.register_buffer("std", torch.ones(1, feat.n_channels, 1, 1))
        self.augment = FeatureAugment(params.train.augment, feat)
        self.net = build_model(params.model, in_shape, n_classes, layout)

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


class SequenceModel(nn.Module):
    """Frame sequences ``(B, T, D)`` with ``lengths`` → the output vector.

    Standardization is per feature dimension (fitted on the training frames). Padding is zeroed after
    standardization, so a clip padded in a batch reaches the network exactly as it would alone. In training
    mode only, ``train.augment.crop`` < 1 cuts each track to a random span first.
    """

    def __init__(self, params: Params, n_outputs: int, dims: int,
                 layout: list[tuple[str, str, int, int]] | None = None) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dims))
        self.register_buffer("std", torch.ones(dims))
        self.net = build_model(params.model, (dims,), n_outputs, layout)
        self.crop = params.train.augment.crop

    @torch.no_grad()
    def set_standardization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-dimension statistics of the training frames (e.g. :meth:`SequenceSet.stats`)."""
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.training and self.crop < 1.0:
            x, lengths = crop_sequences(x, lengths, self.crop)
        steps = torch.arange(x.shape[1], device=x.device)
        valid = (steps[None, :] < lengths.to(x.device)[:, None]).unsqueeze(-1)
        x = torch.where(valid, (x - self.mean) / self.std, torch.zeros((), device=x.device, dtype=x.dtype))
        return self.net(x, lengths)


def forest_layout(specs: list[TargetSpec], plain_single: bool = True) -> list[tuple[str, str, int, int]] | None:
    """How a forest model splits the output vector; None for the single-label case on windows (one plain
    forest on the window cache). Sequences always take the heads, which pool each track's frames."""
    if plain_single and len(specs) == 1 and specs[0].is_classification:
        return None
    return [(s.name, s.kind, s.start, s.size) for s in specs]


def build_task_model(params: Params, specs: list[TargetSpec], dims: int | None = None) -> nn.Module:
    """The model for ``params`` and its targets: a :class:`Classifier` on windows, or a :class:`SequenceModel`
    on ``dims``-dimensional frame sequences (``featurize.kind: tracks``)."""
    sequences = params.featurize.kind == "tracks"
    layout = forest_layout(specs, plain_single=not sequences) if params.model.name == "rf" else None
    if sequences:
        if dims is None:
            raise ValueError("a sequence model needs the feature dimension (dims)")
        return SequenceModel(params, n_outputs(specs), dims, layout)
    return Classifier(params, n_outputs(specs), layout)
