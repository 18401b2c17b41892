"""CRNN shapes across configurations, and the classifier wrapper's train/eval behaviour."""

import pytest
import torch

from fretlab.models.classifier import Classifier
from fretlab.models.crnn import CRNN
from fretlab.params import CRNNParams, Params, parse_params


@pytest.mark.parametrize("pooling", ["last", "mean", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_crnn_output_shape(pooling, bidirectional):
    cfg = CRNNParams(channels=[8, 16], pools=[(4, 2), (2, 2)], rnn_hidden=12, time_pooling=pooling,
                     bidirectional=bidirectional, rnn_layers=2)
    model = CRNN(cfg, (2, 32, 44), n_classes=3).eval()
    assert model(torch.randn(5, 2, 32, 44)).shape == (5, 3)


def test_crnn_rnn_input_size_comes_from_the_conv_stack():
    cfg = CRNNParams(channels=[4, 6, 10], pools=[(4, 2), (4, 2), (2, 1)])
    model = CRNN(cfg, (1, 64, 87), n_classes=3)
    assert model.rnn.input_size == 10 * (64 // 4 // 4 // 2)


def test_pools_that_empty_an_axis_are_rejected():
    cfg = CRNNParams(channels=[4, 4], pools=[(8, 2), (8, 2)])
    with pytest.raises(ValueError, match="shrink"):
        CRNN(cfg, (1, 32, 87), n_classes=3)


def test_augmentation_only_in_training_mode():
    params: Params = parse_params({"model": {"crnn": {"channels": [4], "pools": [[4, 2]], "rnn_hidden": 8}},
                                   "featurize": {"n_mels": 16}})
    model = Classifier(params, 3)
    x = torch.randn(4, 1, 16, params.featurize.n_frames) * 10 - 40
    model.eval()
    torch.testing.assert_close(model.augment(x), x)
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.allclose(model.augment(x), x)
