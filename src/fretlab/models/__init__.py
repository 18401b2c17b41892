"""Model registry: ``model.name`` in params selects the architecture."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from fretlab.models.cnn import CNN
from fretlab.models.crnn import CRNN
from fretlab.models.gru import GRUNet
from fretlab.models.rf import ForestNet
from fretlab.params import Model

BUILDERS: dict[str, Callable[[Model, tuple[int, int, int], int], nn.Module]] = {
    "crnn": lambda cfg, shape, n: CRNN(cfg.crnn, shape, n),
    "cnn": lambda cfg, shape, n: CNN(cfg.cnn, shape, n),
    "gru": lambda cfg, shape, n: GRUNet(cfg.gru, shape, n),
    # an empty forest: fretlab.train.baselines.fit_forest fills it, or load_state_dict from a model directory
    "rf": lambda cfg, shape, n: ForestNet(n),
}

# Models fitted by scikit-learn rather than by the gradient-descent loop in fretlab.train.loop.
NOT_GRADIENT_TRAINED = frozenset({"rf"})


def build_model(cfg: Model, in_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """Instantiate the network named by ``cfg.name`` for inputs of ``in_shape`` (C, mels, frames)."""
    try:
        builder = BUILDERS[cfg.name]
    except KeyError:
        raise ValueError(f"unknown model.name '{cfg.name}'; choose one of {sorted(BUILDERS)}") from None
    return builder(cfg, in_shape, n_classes)
