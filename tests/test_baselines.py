"""Unit tests for the random-forest baseline: tree export, model-dir round trip, dvclive logging, CV search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fretlab.artifacts.modeldir import load_model_dir, save_model_dir
from fretlab.models.classifier import Classifier
from fretlab.models.rf import ForestNet
from fretlab.params import Params, parse_params
from fretlab.runtime import predict_logits
from fretlab.train.baselines import CV_RESULTS, BaselineError, fit_forest, make_forest, pool_array

CLASSES = ["general_note", "harmonic", "dead_note"]


def rf_params(**rf: object) -> Params:
    return parse_params({
        "base": {"workers": 1},
        "featurize": {"n_mels": 8, "target_duration": 0.1, "n_fft": 512, "hop_length": 128},
        "model": {"name": "rf", "rf": {"n_estimators": 15, **rf}},
    })


def make_features(params: Params, n: int, seed: int, n_labels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Noisy features whose band means depend on the label, so the forest has something to learn."""
    rng = np.random.default_rng(seed)
    feat = params.featurize
    y = np.arange(n) % n_labels
    x = rng.normal(size=(n, feat.n_channels, feat.n_mels, feat.n_frames)).astype(np.float32)
    x[:, 0, :3] += y[:, None, None] * 0.7
    return x, y


def test_forest_export_matches_scikit_learn_and_survives_the_model_dir(tmp_path: Path) -> None:
    params = rf_params()
    x, y = make_features(params, 120, seed=0, n_labels=2)  # class 2 never seen in training
    forest = make_forest(params).fit(pool_array(x), y)
    model = Classifier(params, len(CLASSES))
    model.net.load_forest(forest)
    x_new, _ = make_features(params, 40, seed=1)
    expected = forest.predict_proba(pool_array(x_new))  # columns: classes 0 and 1 only

    proba = torch.softmax(predict_logits(model, torch.from_numpy(x_new), 16), dim=1).numpy()
    assert proba.shape == (40, 3)
    np.testing.assert_allclose(proba[:, :2], expected, atol=1e-6)
    assert np.all(proba[:, 2] < 1e-9)
    assert (proba.argmax(1) == forest.predict(pool_array(x_new))).all()

    save_model_dir(tmp_path / "m", model, params, CLASSES, {})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded, loaded_params, classes = load_model_dir(tmp_path / "m")
    assert classes == CLASSES and loaded_params.model.name == "rf"
    assert isinstance(loaded.net, ForestNet) and loaded.net.n_trees == 15
    again = torch.softmax(predict_logits(loaded, torch.from_numpy(x_new), 7), dim=1).numpy()
    np.testing.assert_array_equal(again, proba)


def test_empty_forest_refuses_to_predict() -> None:
    params = rf_params()
    x, _ = make_features(params, 2, seed=0)
    with pytest.raises(RuntimeError, match="holds no trees"):
        Classifier(params, 3).eval()(torch.from_numpy(x))


def write_cache(params: Params, root: Path, n_groups: int) -> tuple[Path, Path]:
    """A feature cache (train/val) plus the split metadata that names each event's group."""
    features = root / "features"
    features.mkdir()
    rows = []
    for split, n, seed in (("train", 90, 0), ("val", 30, 1)):
        x, y = make_features(params, n, seed)
        ids = [f"{split}_{i:03d}" for i in range(n)]
        np.save(features / f"{split}.npy", x)
        pd.DataFrame({"note_id": ids, "label_category": np.asarray(CLASSES)[y], "label": y}).to_csv(
            features / f"{split}.csv", index=False)
        rows += [{"note_id": i, "group": f"g{k % n_groups}", "split": split} for k, i in enumerate(ids)]
    meta = root / "metadata.csv"
    pd.DataFrame(rows).to_csv(meta, index=False)
    return features, meta


def test_fit_forest_with_search_logs_like_the_training_loop(tmp_path: Path) -> None:
    params = parse_params({**rf_params().model_dump(mode="json"), "model": {"name": "rf", "rf": {
        "n_estimators": 10, "search": {"enabled": True, "n_iter": 3, "cv_folds": 3, "n_estimators": [5, 10],
                                        "max_depth": [None, 4], "max_features": ["sqrt", 0.5]}}}})
    features, meta = write_cache(params, tmp_path, n_groups=6)
    live = tmp_path / "live"
    model = Classifier(params, len(CLASSES))
    summary = fit_forest(params, model, features, meta, live)

    for name in ("train/loss", "val/loss", "val/macro_f1", "val/accuracy"):
        tsv = pd.read_csv(live / "plots" / "metrics" / f"{name}.tsv", sep="\t")
        assert len(tsv) == 1  # one fit, one step
    logged = json.loads((live / "metrics.json").read_text())
    assert logged["val"]["macro_f1"] == pytest.approx(summary["best_val_macro_f1"])
    assert logged["best_cv_macro_f1"] == pytest.approx(summary["search"]["best_cv_macro_f1"])
    assert summary["best_val_macro_f1"] > 0.5  # the labels are learnable from the band means
    table = pd.read_csv(live / CV_RESULTS)
    assert len(table) == 3 and table["rank_test_score"].is_monotonic_increasing
    best = summary["search"]["best_params"]
    assert best["n_estimators"] in (5, 10) and model.net.n_trees == best["n_estimators"]

    # a plain fit afterwards must not leave the earlier search's table behind
    plain = parse_params({**params.model_dump(mode="json"), "model": {"name": "rf", "rf": {"n_estimators": 4}}})
    fit_forest(plain, Classifier(plain, len(CLASSES)), features, meta, live)
    assert not (live / CV_RESULTS).exists()


def test_search_needs_enough_groups(tmp_path: Path) -> None:
    params = parse_params({**rf_params().model_dump(mode="json"),
                           "model": {"name": "rf", "rf": {"search": {"enabled": True, "cv_folds": 4}}}})
    features, meta = write_cache(params, tmp_path, n_groups=3)
    with pytest.raises(BaselineError, match="cv_folds=4 but the train split holds only 3 groups"):
        fit_forest(params, Classifier(params, 3), features, meta, tmp_path / "live")
