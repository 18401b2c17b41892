"""Resuming from the per-epoch checkpoint reproduces an uninterrupted run exactly (fast, in-process).

The DVC-level kill test is in test_reliability_pipeline.py; this one pins the mechanism: model,
optimizer, scheduler, torch RNG (dropout, augmentation) and batch-order generator all restored.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fretlab.models.classifier import Classifier
from fretlab.params import parse_params
from fretlab.tasks.targets import resolve_targets
from fretlab.train import loop as training
from fretlab.train.inputs import RoleData

EPOCHS = 4


class Interrupted(Exception):
    pass


def _setup(tmp_path, scheduler: str, ema_decay: float | None = None):
    params = parse_params({
        "base": {"device": "cpu"},
        "featurize": {"n_mels": 16, "target_duration": 0.25},
        "model": {"crnn": {"channels": [4, 8], "pools": [[2, 2], [2, 2]], "rnn_hidden": 8, "head_hidden": 8,
                           "dropout": 0.3}},
        "train": {"epochs": EPOCHS, "patience": EPOCHS, "batch_size": 8, "scheduler": scheduler, "lr": 0.01,
                  "ema_decay": ema_decay,
                  "augment": {"gain_db": 6.0, "shift_ms": 50.0}},
    })
    rng = np.random.default_rng(0)
    shape = (params.featurize.n_channels, params.featurize.n_mels, params.featurize.n_frames)
    data = {s: (rng.standard_normal((n, *shape)).astype(np.float32), np.arange(n) % 3)
            for s, n in (("train", 40), ("val", 12))}
    features = tmp_path / "features"
    features.mkdir()
    for split, (x, y) in data.items():  # the fingerprint hashes these files
        np.save(features / f"{split}.npy", x)
        (features / f"{split}.csv").write_text("label\n" + "\n".join(map(str, y)) + "\n", encoding="utf-8")
    return params, data, features


def _train(params, data, features, run_dir):
    training.seed_everything(params.base.seed)
    model = Classifier(params, 3)
    roles = {k: RoleData.windows(x, y) for k, (x, y) in data.items()}
    state = training.train_model(params, model, roles, resolve_targets(params), run_dir / "ckpt", run_dir / "live",
                                 features)
    return model, state


@pytest.mark.parametrize(("scheduler", "ema_decay"), [("plateau", None), ("cosine", None), ("plateau", 0.9)])
def test_resume_after_interruption_matches_uninterrupted_training(tmp_path, monkeypatch, scheduler, ema_decay):
    params, data, features = _setup(tmp_path, scheduler, ema_decay)
    ref_model, ref_state = _train(params, data, features, tmp_path / "ref")

    real_save = training.save_checkpoint
    saved = []

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        saved.append(1)
        if len(saved) == 2:
            raise Interrupted  # after epoch 2's checkpoint, before epoch 3

    monkeypatch.setattr(training, "save_checkpoint", save_then_die)
    with pytest.raises(Interrupted):
        _train(params, data, features, tmp_path / "run")
    monkeypatch.setattr(training, "save_checkpoint", real_save)
    torch.manual_seed(999)  # whatever the process did meanwhile must not matter
    model, state = _train(params, data, features, tmp_path / "run")

    assert state.epoch == ref_state.epoch == EPOCHS
    assert state.history == ref_state.history
    for key, value in ref_model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
