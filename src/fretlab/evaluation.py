"""Evaluate a trained model on cached features: metrics JSON, DVC confusion data and PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fretlab.io import write_csv, write_json
from fretlab.metrics import classification_metrics, confusion
from fretlab.plots import plot_confusion, plot_per_class_f1


def write_evaluation(
    split: str, y_true: np.ndarray, y_pred: np.ndarray, note_ids: list[str], classes: list[str],
    metrics_dir: Path, plots_dir: Path,
) -> dict[str, Any]:
    """Write ``metrics/<split>.json``, ``plots/confusion/<split>.csv`` and the PNG figures."""
    metrics = classification_metrics(y_true, y_pred, classes)
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
