"""Evaluate a trained model on cached features: metrics JSON, DVC confusion data and PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fretlab.io import read_json, write_csv, write_json
from fretlab.tasks.metrics import classification_metrics, confusion
from fretlab.tasks.plots import plot_confusion, plot_per_class_f1


def write_evaluation(
    split: str, y_true: np.ndarray, y_pred: np.ndarray, note_ids: list[str], classes: list[str],
    metrics_dir: Path, plots_dir: Path, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``metrics/<split>.json``, ``plots/confusion/<split>.csv`` and the PNG figures.

    ``extra`` adds keys to the metrics JSON (e.g. window-level figures next to clip-level ones).
    """
    metrics = {**classification_metrics(y_true, y_pred, classes), **(extra or {})}
    write_json(metrics_dir / f"{split}.json", metrics)
    names = np.asarray(classes)
    write_csv(plots_dir / "confusion" / f"{split}.csv",
              pd.DataFrame({"note_id": note_ids, "actual": names[y_true], "predicted": names[y_pred]}))
    figures = plots_dir / "figures"
    plot_confusion(confusion(y_true, y_pred, len(classes)), classes, figures / f"confusion_{split}.png",
                   f"{split}: confusion (counts)", normalized=False)
    plot_confusion(confusion(y_true, y_pred, len(classes), normalize=True), classes,
                   figures / f"confusion_{split}_normalized.png", f"{split}: confusion (row-normalized)",
                   normalized=True)
    plot_per_class_f1({c: metrics["per_class"][c]["f1"] for c in classes}, figures / f"per_class_f1_{split}.png",
                      f"{split}: per-class F1")
    return metrics


def clip_scores(
    logits: torch.Tensor, y: np.ndarray, clip_ids: list[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Clip-level labels and predictions: the mean of each clip's window probabilities, then argmax.

    Returns ``(y_true, y_pred, clip_ids)`` with one entry per clip, in first-seen order.
    """
    probs = torch.softmax(logits.float(), dim=1).numpy()
    codes, uniques = pd.factorize(pd.Series(clip_ids), sort=False)
    sums = np.zeros((len(uniques), probs.shape[1]))
    np.add.at(sums, codes, probs)
    labels = np.full(len(uniques), -1)
    labels[codes] = y
    if np.any(pd.Series(y).groupby(codes).nunique() > 1):
        raise ValueError("windows of one clip carry different labels; re-run the featurize stage")
    return labels, sums.argmax(1), [str(u) for u in uniques]


def evaluate_split(
    split: str, logits: torch.Tensor, y: np.ndarray, ids: list[str], clip_ids: list[str] | None,
    classes: list[str], metrics_dir: Path, plots_dir: Path,
) -> dict[str, Any]:
    """Score one split; with ``clip_ids`` the headline figures are clip-level (mean window probability)."""
    y_pred = logits.argmax(1).numpy()
    if clip_ids is None:
        return write_evaluation(split, y, y_pred, ids, classes, metrics_dir, plots_dir)
    window = classification_metrics(y, y_pred, classes)
    y_clip, pred_clip, clips = clip_scores(logits, y, clip_ids)
    extra = {"window_accuracy": window["accuracy"], "window_macro_f1": window["macro_f1"], "n_windows": len(y)}
    return write_evaluation(split, y_clip, pred_clip, clips, classes, metrics_dir, plots_dir, extra)


def write_data_counts(features_dir: Path, metrics_dir: Path) -> dict[str, Any]:
    """Write ``metrics/data.json``: events featurized and skipped per split, from the featurize summary.

    Declared as a DVC metric, so items dropped by ``featurize.on_error: skip`` show up in
    ``dvc metrics show`` / ``dvc exp show`` next to the scores (the rows are in ``skipped.csv``).
    """
    summary = read_json(Path(features_dir) / "summary.json")
    splits = summary.get("splits", {})
    counts = {
        "events": {name: int(s["events"]) for name, s in splits.items()},
        "skipped": {name: int(s["skipped"]) for name, s in splits.items()},
        "skipped_total": int(summary.get("skipped_total", 0)),
    }
    write_json(Path(metrics_dir) / "data.json", counts)
    return counts
