"""Small model directories of every registry model, written as the train stage writes them, for the ONNX tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from fretlab.artifacts.modeldir import save_model_dir
from fretlab.audio.features import FeatureExtractor, extract
from fretlab.audio.loading import prepare_windows, resample
from fretlab.models.classifier import Classifier
from fretlab.params import Params, Synthesize, parse_params
from fretlab.synth.guitar import draw_note, make_guitar, plan_dataset, render_file

CLASSES = ["general_note", "harmonic", "dead_note"]
TINY_NET = {"n_mels": 32}
MODELS: dict[str, dict[str, Any]] = {
    "crnn": {},  # the default CRNN, default params
    "cnn": {"featurize": TINY_NET, "model": {"name": "cnn", "cnn": {"channels": [8, 16, 16], "conv1d_channels": 8,
                                                                    "head_hidden": 16}}},
    # every front-end option (deltas, RMS) and the recurrent variants: bidirectional GRU, attention pooling
    "gru": {"featurize": {**TINY_NET, "deltas": True, "rms": True},
            "model": {"name": "gru", "gru": {"hidden": 16, "head_hidden": 16, "bidirectional": True,
                                             "time_pooling": "attention"}}},
    "rf": {"base": {"workers": 1}, "featurize": {"n_mels": 16, "n_fft": 512, "hop_length": 128},
           "model": {"name": "rf", "rf": {"n_estimators": 12}}},
}


def take(seed: int = 21, n_notes: int = 8, sr: int = 44100) -> tuple[np.ndarray, list[float]]:
    """A synthetic multi-note recording (44.1 kHz) and its note onsets."""
    cfg = Synthesize()
    rng = np.random.default_rng(seed)
    labels = rng.choice(CLASSES, size=n_notes, p=[0.6, 0.2, 0.2])
    notes = [draw_note(str(label), cfg, rng) for label in labels]
    audio, times = render_file(notes, make_guitar(seed, rng), cfg, seed)
    return audio.astype(np.float32), [on for on, _ in times]


def make_model_dir(out: Path, name: str) -> Path:
    """An untrained (``rf``: fitted on random labels) model directory whose probabilities are far from flat."""
    from fretlab.train.baselines import make_forest, pool_array

    params = parse_params(MODELS[name])
    torch.manual_seed(0)
    model = Classifier(params, len(CLASSES))
    if name == "rf":
        cfg = params.featurize
        audio, _ = take(seed=5, n_notes=12)
        wave = resample(audio, 44100, cfg.sample_rate)
        starts = np.random.default_rng(0).uniform(0, len(wave) / cfg.sample_rate, 150).tolist()
        x = extract(FeatureExtractor(cfg), prepare_windows(wave, cfg.sample_rate, starts, cfg))
        y = np.random.default_rng(1).integers(0, len(CLASSES), len(x))  # random labels: deep, unpruned trees
        model.net.load_forest(make_forest(params).fit(pool_array(x), y))
    else:
        with torch.no_grad():  # standardization as after training, and a head that separates the classes
            model.mean.fill_(-40.0)
            model.std.fill_(20.0)
            head = [m for m in model.net.modules() if isinstance(m, torch.nn.Linear)][-1]
            head.weight.mul_(30.0)
            head.bias[0] -= 1.0  # general_note would win every window of the fixtures' takes: mixed labels instead
    save_model_dir(out, model, params, CLASSES, {"best_epoch": 1})
    return out


def benchmark_take(path: Path, seconds: float = 180.0) -> Path:
    """The benchmark's 3-minute take, as ``benchlib.make_recording`` builds it from the default dataset.

    Only the files it uses are rendered: the default dataset's multi-note files (seed 42), in path
    order, until ``seconds`` are covered, concatenated and written as 16-bit PCM.
    """
    params = Params()
    cfg = params.synthesize
    licks = sorted((j for j in plan_dataset(cfg, params.data.classes, params.base.seed) if len(j.notes) > 1),
                   key=lambda j: f"audio/{j.guitar.name}/{j.file_id}.wav")
    pieces, total = [], 0.0
    for job in licks:
        pieces.append(render_file(job.notes, job.guitar, cfg, job.seed)[0])
        total += len(pieces[-1]) / cfg.sample_rate
        if total >= seconds:
            break
    sf.write(path, np.concatenate(pieces)[: int(seconds * cfg.sample_rate)], cfg.sample_rate, subtype="PCM_16")
    return path
