"""Model registry: ``model.name`` in params selects the architecture."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from fretlab.models.crnn import CRNN
from fretlab.params import Model

BUILDERS: dict[str, Callable[[Model, tuple[int, int, int], int], nn.Module]] = {
    "crnn": lambda cfg, shape, n: CRNN(cfg.crnn, shape, n),
}


def build_model(cfg: Model, in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """Instantiate the network named by ``cfg.name`` for inputs of ``in_shape`` (C, mels, frames)."""
    try:
        builder = BUILDERS[cfg.name]
    except KeyError:
        raise ValueError(f"unknown model.name '{cfg.name}'; choose one of {sorted(BUILDERS)}") from None
    return builder(cfg, in_shape, n_classes)
