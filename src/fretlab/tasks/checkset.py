"""Score a trained model on the real-sampled check set: metrics JSON, DVC confusion data, PNG figures.

Each note is classified exactly as ``fretlab predict NOTE.wav`` would (:meth:`Predictor.predict_note`
with the model directory's own featurize and predict settings), so the figures are what a user of
the model gets on real-sampled audio. The check set has no dead notes (docs/checkset.md): macro-F1
and balanced accuracy are over the classes present.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from fretlab.io import write_csv, write_json
from fretlab.tasks.metrics import confusion, group_accuracy, present_class_metrics
from fretlab.tasks.plots import plot_confusion, plot_group_accuracy, plot_per_class_f1

METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion.csv"
FIGURES = "figures"


class NotePredictor(Protocol):
    """What scoring needs of :class:`fretlab.app.predict.Predictor` (either engine)."""

    classes: list[str]

    def load(self, path: str | Path) -> np.ndarray: ...

    def predict_notes(self, waves: list[np.ndarray]) -> list[Any]: ...


def predict_checkset(predictor: NotePredictor, meta: pd.DataFrame, root: Path, files_per_call: int = 64
                     ) -> pd.DataFrame:
    """``meta`` with ``predicted`` and ``confidence`` columns: each file classified as one note.

    Files go to the model ``files_per_call`` at a time (:meth:`Predictor.predict_notes`, the batched
    :meth:`Predictor.predict_note`): one model call per note ran the default CRNN at ~0.4 s a note on
    the 2-core CPU, mostly per-call overhead; memory stays bounded by the chunk.
    """
    labels, confidences = [], []
    paths = list(meta["audio_path"])
    for start in range(0, len(paths), files_per_call):
        waves = [predictor.load(root / rel) for rel in paths[start : start + files_per_call]]
        for note in predictor.predict_notes(waves):
            labels.append(note.label)
            confidences.append(round(float(note.confidence), 6))
    return meta.assign(predicted=labels, confidence=confidences)


def checkset_metrics(scored: pd.DataFrame, classes: list[str]) -> dict[str, Any]:
    """Overall, per-class, per-soundfont and per-group (instrument) figures of scored check-set rows."""
    index = {c: i for i, c in enumerate(classes)}
    y_true = scored["label_category"].map(index).to_numpy(dtype=np.int64)
    y_pred = scored["predicted"].map(index).to_numpy(dtype=np.int64)
    metrics = present_class_metrics(y_true, y_pred, classes)
    groups = scored["group"].astype(str).tolist()
    per_group = group_accuracy(y_true, y_pred, groups)
    first = scored.drop_duplicates("group").set_index("group")
    for group, row in per_group.items():
        row.update({"label": str(first.at[group, "label_category"]), "program_name": str(first.at[group,
                    "program_name"])})
    metrics["per_group"] = per_group
    metrics["per_soundfont"] = {}
    for name, rows in scored.groupby("soundfont", sort=True):
        sub = present_class_metrics(rows["label_category"].map(index).to_numpy(dtype=np.int64),
                                    rows["predicted"].map(index).to_numpy(dtype=np.int64), classes)
        metrics["per_soundfont"][str(name)] = {k: sub[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "n")}
    metrics["mean_confidence"] = float(scored["confidence"].mean())
    return metrics


def write_checkset_report(scored: pd.DataFrame, classes: list[str], out_dir: Path) -> dict[str, Any]:
    """Write ``metrics.json``, ``confusion.csv`` (for ``dvc plots``) and the figures into ``out_dir``."""
    metrics = checkset_metrics(scored, classes)
    write_json(out_dir / METRICS_FILE, metrics)
    write_csv(out_dir / CONFUSION_FILE, scored[["note_id", "group", "label_category", "predicted", "confidence"]]
              .rename(columns={"label_category": "actual"}))
    index = {c: i for i, c in enumerate(classes)}
    y_true = scored["label_category"].map(index).to_numpy(dtype=np.int64)
    y_pred = scored["predicted"].map(index).to_numpy(dtype=np.int64)
    figures = out_dir / FIGURES
    plot_confusion(confusion(y_true, y_pred, len(classes)), classes, figures / "confusion.png",
                   "check set: confusion (counts)", normalized=False)
    plot_confusion(confusion(y_true, y_pred, len(classes), normalize=True), classes,
                   figures / "confusion_normalized.png", "check set: confusion (row-normalized)", normalized=True)
    plot_per_class_f1({c: metrics["per_class"][c]["f1"] for c in metrics["classes_present"]},
                      figures / "per_class_f1.png", "check set: per-class F1 (classes present)")
    plot_group_accuracy({g: v["accuracy"] for g, v in metrics["per_group"].items()},
                        figures / "per_group_accuracy.png", "check set: accuracy per soundfont/program")
    return metrics


def write_disabled_report(out_dir: Path) -> dict[str, Any]:
    """``checkset.enabled: false``: a metrics file saying so and an empty confusion table (the outputs exist)."""
    metrics = {"enabled": False, "n": 0}
    write_json(out_dir / METRICS_FILE, metrics)
    write_csv(out_dir / CONFUSION_FILE, pd.DataFrame(columns=["note_id", "group", "actual", "predicted",
                                                              "confidence"]))
    (out_dir / FIGURES).mkdir(parents=True, exist_ok=True)
    return metrics
