"""Unit tests for the model registry: output shapes over configs, the scheduler choice, checkpoint fingerprints."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from fretlab.audio.features import FeatureExtractor
from fretlab.models import BUILDERS, build_model
from fretlab.models.classifier import Classifier
from fretlab.models.layers import pool_sequence
from fretlab.params import Model, Params, ParamsError, parse_params
from fretlab.train.loop import fingerprint, make_scheduler

N_CLASSES = 3
# a short window keeps the shape tests fast: 32 mels x 22 frames
FEAT = {"n_mels": 32, "target_duration": 0.25}

CONFIGS = [
    ("crnn", {}),
    ("crnn", {"time_pooling": "mean"}),
    ("crnn", {"time_pooling": "attention", "bidirectional": True}),
    ("crnn", {"time_pooling": "last", "bidirectional": True, "rnn_layers": 2}),
    ("crnn", {"channels": [8], "pools": [[2, 2]], "kernel_size": 5}),
    ("cnn", {}),
    ("cnn", {"channels": [8, 16], "pools": [[2, 2], [2, 4]], "conv1d_kernel": 4}),
    ("gru", {}),
    ("gru", {"time_pooling": "attention", "bidirectional": True, "layers": 2, "dropout": 0.1}),
    ("gru", {"time_pooling": "mean", "bidirectional": True}),
    ("gru", {"time_pooling": "meanstd", "layer_norm": True}),
    ("crnn", {"time_pooling": "meanstd"}),
    ("gru", {"time_pooling": "last", "bidirectional": True}),
]


def params_for(name: str, cfg: dict, **featurize: object) -> Params:
    return parse_params({"featurize": {**FEAT, **featurize}, "model": {"name": name, name: cfg}})


@pytest.mark.parametrize(("name", "cfg"), CONFIGS)
@pytest.mark.parametrize("channels", [{}, {"deltas": True, "rms": True}])
def test_neural_models_map_features_to_logits(name: str, cfg: dict, channels: dict) -> None:
    params = params_for(name, cfg, **channels)
    feat = params.featurize
    model = Classifier(params, N_CLASSES)
    x = torch.randn(5, feat.n_channels, feat.n_mels, feat.n_frames)
    model.train()
    out = model(x)
    assert out.shape == (5, N_CLASSES)
    out.sum().backward()  # every parameter takes part in the forward pass
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        single = model(x[:1])
        assert torch.allclose(single, model(x)[:1], atol=1e-5)  # no cross-example leakage in eval mode


def test_registry_covers_every_model_name() -> None:
    names = Params.model_fields["model"].annotation.model_fields["name"].annotation.__args__
    assert set(names) == set(BUILDERS)


def test_shape_probe_leaves_batchnorm_untouched() -> None:
    net = build_model(params_for("cnn", {}).model, (1, 32, 44), N_CLASSES)
    bn = net.conv[0][1]
    assert int(bn.num_batches_tracked) == 0
    assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))


@pytest.mark.parametrize("name", ["crnn", "cnn"])
def test_pools_too_large_fail_clearly(name: str) -> None:
    cfg = {"channels": [8, 8], "pools": [[16, 2], [16, 2]]}
    with pytest.raises(ValueError, match=rf"model\.{name}\.pools .*shrink"):  # caught when params load
        params_for(name, cfg)
    with pytest.raises(ValueError, match=rf"model\.{name}\.pools shrink"):  # and by the module itself
        build_model(Model.model_validate({"name": name, name: cfg}), (1, 32, 44), N_CLASSES)


def test_pools_must_match_channels() -> None:
    with pytest.raises(ParamsError, match=re.escape("model.cnn.pools has 2 entries")):
        parse_params({"model": {"cnn": {"channels": [8, 8, 8], "pools": [[2, 2], [2, 2]]}}})


def test_bidirectional_last_pooling_uses_each_directions_final_step() -> None:
    hidden = 2
    out = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)  # (B, T, 2*hidden)
    pooled = pool_sequence(out, "last", None, hidden, bidirectional=True)
    assert torch.equal(pooled[:, :hidden], out[:, -1, :hidden])
    assert torch.equal(pooled[:, hidden:], out[:, 0, hidden:])


@pytest.mark.parametrize("kind", ["plateau", "cosine", "none"])
def test_scheduler_choice(kind: str) -> None:
    cfg = parse_params({"train": {"scheduler": kind, "epochs": 4, "lr": 0.1}}).train
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = make_scheduler(opt, cfg)
    lrs = []
    for _ in range(4):
        opt.step()
        if kind == "plateau":
            sched.step(0.0)
        else:
            sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    if kind == "none":
        assert lrs == [0.1] * 4
    elif kind == "cosine":
        assert lrs == sorted(lrs, reverse=True) and lrs[-1] < 1e-9
    else:  # val macro-F1 stuck at 0: lr halves once patience (2) runs out
        assert lrs[-1] == pytest.approx(0.05)
    sched.load_state_dict(sched.state_dict())  # checkpointable


def test_fingerprint_separates_param_sets(tmp_path: Path) -> None:
    """A checkpoint left by another experiment's params is never resumed."""
    for split in ("train", "val"):
        np.save(tmp_path / f"{split}.npy", np.zeros((2, 1, 4, 4), dtype=np.float32))
        (tmp_path / f"{split}.csv").write_text("note_id,label_category,label\na,x,0\nb,y,1\n")
    base = fingerprint(parse_params({}), tmp_path)
    assert fingerprint(parse_params({}), tmp_path) == base
    assert fingerprint(parse_params({"base": {"workers": 3}}), tmp_path) == base  # does not change results
    for change in ({"train": {"lr": 5e-4}}, {"model": {"crnn": {"rnn_hidden": 32}}}, {"model": {"name": "gru"}},
                   {"train": {"scheduler": "cosine"}}, {"base": {"seed": 1}}):
        assert fingerprint(parse_params(change), tmp_path) != base, change
    np.save(tmp_path / "val.npy", np.ones((2, 1, 4, 4), dtype=np.float32))
    assert fingerprint(parse_params({}), tmp_path) != base  # new features, new run


@pytest.mark.parametrize("feat", [
    {"n_fft": 2048, "hop_length": 512, "n_mels": 48},
    {"n_fft": 512, "hop_length": 128, "n_mels": 40, "deltas": True},
    {"n_fft": 1024, "hop_length": 256, "n_mels": 64, "rms": True, "deltas": True},
])
@pytest.mark.parametrize("name", ["crnn", "cnn", "gru"])
def test_feature_params_flow_from_front_end_into_every_model(feat: dict, name: str) -> None:
    """The feature map's shape follows the featurize params, and each model is built for exactly that shape."""
    params = parse_params({"featurize": {**feat, "target_duration": 0.5}, "model": {"name": name}})
    cfg = params.featurize
    x = FeatureExtractor(cfg)(torch.randn(3, cfg.n_samples))
    assert x.shape == (3, cfg.n_channels, cfg.n_mels, cfg.n_frames)
    model = Classifier(params, N_CLASSES).eval()
    with torch.no_grad():
        assert model(x).shape == (3, N_CLASSES)


def test_meanstd_pooling_is_the_mean_and_std_of_the_valid_steps():
    gen = torch.Generator().manual_seed(3)
    out = torch.randn(2, 6, 4, generator=gen)
    lengths = torch.tensor([6, 3])
    pooled = pool_sequence(out, "meanstd", None, 4, bidirectional=False, lengths=lengths)
    for row, n in enumerate(lengths.tolist()):
        valid = out[row, :n]
        expected = torch.cat([valid.mean(0), valid.std(0, unbiased=False)])
        torch.testing.assert_close(pooled[row], expected, atol=1e-6, rtol=0)
    # without lengths every step counts; a constant sequence has std at the floor, not NaN, and finite gradients
    torch.testing.assert_close(pool_sequence(out, "meanstd", None, 4, False)[0], pooled[0])
    flat = torch.ones(1, 5, 4, requires_grad=True)
    pool_sequence(flat, "meanstd", None, 4, False).sum().backward()
    assert torch.isfinite(flat.grad).all()
