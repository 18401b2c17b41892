"""Model registry: ``model.name`` in params selects the architecture."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from fretlab.models.cnn import CNN
from fretlab.models.crnn import CRNN
from fretlab.models.gru import GRUNet
from fretlab.models.rf import ForestHeads, ForestNet
from fretlab.params import Model

BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "crnn": lambda cfg, shape, n: CRNN(cfg.crnn, shape, n),
    "cnn": lambda cfg, shape, n: CNN(cfg.cnn, shape, n),
    "gru": lambda cfg, shape, n: GRUNet(cfg.gru, shape, n),
    # an empty forest: fretlab.train.baselines fills it, or load_state_dict from a model directory
    "rf": lambda cfg, shape, n, layout=None: ForestNet(n) if layout is None else ForestHeads(layout,
                                                                                              cfg.rf.per_target),
}

# Models fitted by scikit-learn rather than by the gradient-descent loop in fretlab.train.loop.
NOT_GRADIENT_TRAINED = frozenset({"rf"})


# Models that read variable-length sequences (forward(x, lengths)); the CNN averages over a fixed time axis.
SEQUENCE_MODELS = frozenset({"crnn", "gru", "rf"})


def build_model(cfg: Model, in_shape: tuple[int, ...], n_classes: int,
                layout: list[tuple[str, str, int, int]] | None = None) -> nn.Module:
    """Instantiate the network named by ``cfg.name`` for inputs of ``in_shape``: (C, mels, frames) windows, or
    (D,) frame sequences. ``n_classes`` is the length of the output vector; ``layout`` (the forest only) splits
    it into targets when there is more than one."""
    try:
        builder = BUILDERS[cfg.name]
    except KeyError:
        raise ValueError(f"unknown model.name '{cfg.name}'; choose one of {sorted(BUILDERS)}") from None
    if len(in_shape) == 1 and cfg.name not in SEQUENCE_MODELS:
        raise ValueError(f"model.name '{cfg.name}' takes fixed windows; with featurize.kind tracks use one of "
                         f"{sorted(SEQUENCE_MODELS)}")
    if cfg.name == "rf":
        return builder(cfg, in_shape, n_classes, layout)
    return builder(cfg, in_shape, n_classes)
