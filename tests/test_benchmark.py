"""The benchmark's instruments: the on-the-fly reference does the cache's work; the compute timer adds up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from benchlib import ComputeTimer, OnTheFlyDataset, median

from fretlab.audio.features import FeatureExtractor, extract
from fretlab.cache.featurize import prepare_windows
from fretlab.models.classifier import Classifier
from fretlab.params import Featurize, parse_params
from fretlab.tasks.targets import resolve_targets
from fretlab.train.inputs import RoleData
from fretlab.train.loop import train_model

CLASSES = ["general_note", "harmonic", "dead_note"]
TINY = {
    "featurize": {"n_mels": 32},
    "model": {"crnn": {"channels": [8, 16], "pools": [[4, 2], [4, 2]], "rnn_hidden": 16, "head_hidden": 16}},
    "train": {"epochs": 3, "batch_size": 8, "patience": 5},
}


def test_on_the_fly_reference_computes_the_cached_features(tmp_path):
    """A fair baseline: same windows, same log-mel, only recomputed with librosa on every access."""
    sr, cfg = 44100, Featurize(n_mels=32)
    t = np.arange(int(2.5 * sr)) / sr
    wave = (0.5 * np.sin(2 * np.pi * 330 * t) * np.exp(-2 * (t % 1.0))).astype(np.float32)
    sf.write(tmp_path / "lick.wav", wave, sr, subtype="FLOAT")
    sf.write(tmp_path / "note.wav", wave[: int(0.6 * sr)], sr, subtype="FLOAT")
    meta = pd.DataFrame({"audio_path": ["lick.wav", "lick.wav", "note.wav"], "onset_sec": [0.0, 1.0, 0.0],
                         "label_category": ["harmonic", "dead_note", "general_note"]})
    ds = OnTheFlyDataset(meta, tmp_path, cfg, CLASSES)
    assert len(ds) == 3 and [ds[i][1] for i in range(3)] == [1, 2, 0]

    from fretlab.audio.loading import load_audio

    extractor = FeatureExtractor(cfg)
    lick, fsr = load_audio(tmp_path / "lick.wav", cfg.sample_rate)
    note, _ = load_audio(tmp_path / "note.wav", cfg.sample_rate)
    cached = [extract(extractor, prepare_windows(lick, fsr, [1.0], cfg))[0],
              extract(extractor, prepare_windows(note, fsr, [None], cfg))[0]]
    for got, want in zip([ds[1][0].numpy(), ds[2][0].numpy()], cached, strict=True):
        assert got.shape == want.shape == (1, 32, cfg.n_frames)
        assert np.median(np.abs(got - want)) < 0.5  # dB; resampling a segment vs the whole file differs at edges


def test_compute_timer_splits_epochs_into_model_compute_and_the_rest(tmp_path):
    params = parse_params(TINY)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 1, 32, 87)).astype(np.float32)
    y = np.arange(40) % 3
    for split in ("train", "val"):
        np.save(tmp_path / f"{split}.npy", x)
        pd.DataFrame({"note_id": range(40), "label": y}).to_csv(tmp_path / f"{split}.csv", index=False)
    model = Classifier(params, 3)
    timer = ComputeTimer(model, torch.device("cpu"))
    real_backward = torch.Tensor.backward
    with timer.installed():
        roles = {"train": RoleData.windows(x, y), "val": RoleData.windows(x, y)}
        train_model(params, model, roles, resolve_targets(params), tmp_path / "ck", tmp_path / "live", tmp_path)
    assert torch.Tensor.backward is real_backward and "forward" not in vars(model)  # hooks removed
    epochs = timer.epochs()
    assert len(timer.marks) == 3 and len(epochs) == 2  # one mark per epoch; the first epoch has no start mark
    for e in epochs:
        assert 0 < e["compute_s"] < e["wall_s"]
        assert 0 < e["outside_fraction"] < 1
    assert median([3.0, 1.0, 2.0]) == 2.0
