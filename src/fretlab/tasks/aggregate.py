"""Cross-validation summary: mean ± std over folds, a per-fold table and the summed confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fretlab.io import read_json, write_csv, write_json
from fretlab.tasks.metrics import confusion
from fretlab.tasks.plots import plot_confusion

SUMMARISED = ("accuracy", "macro_f1", "balanced_accuracy", "window_accuracy", "window_macro_f1")


class AggregateError(ValueError):
    """A fold whose evaluation output is missing."""


def mean_std(values: pd.Series) -> dict[str, float]:
    """Mean and sample standard deviation (ddof=1) across folds."""
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}


def fold_table(folds: list[int], metrics_dir: Path, split: str = "test") -> pd.DataFrame:
    """One row per fold with its headline figures (read from ``<metrics>/fold<K>/<split>.json``)."""
    rows = []
    for k in folds:
        path = metrics_dir / f"fold{k}" / f"{split}.json"
        if not path.is_file():
            raise AggregateError(f"{path} is missing; run the evaluate stage for fold {k} (dvc repro evaluate@{k})")
        metrics = read_json(path)
        rows.append({"fold": k, "n": metrics["n"], **{m: metrics[m] for m in SUMMARISED if m in metrics}})
    return pd.DataFrame(rows)


def pooled_predictions(folds: list[int], plots_dir: Path, split: str = "test") -> pd.DataFrame:
    """Every fold's per-clip ``actual``/``predicted`` rows with a ``fold`` column (a DVC confusion plot source)."""
    frames = []
    for k in folds:
        path = plots_dir / f"fold{k}" / "confusion" / f"{split}.csv"
        if not path.is_file():
            raise AggregateError(f"{path} is missing; run the evaluate stage for fold {k} (dvc repro evaluate@{k})")
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame.insert(0, "fold", k)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def aggregate_folds(folds: list[int], classes: list[str], metrics_dir: Path, plots_dir: Path,
                    out_dir: Path) -> dict[str, Any]:
    """Write ``metrics.json`` (mean ± std), ``folds.csv``, ``confusion.csv`` (+ matrix CSV) and ``confusion.png``.

    The summed confusion matrix is the confusion of all folds' test predictions pooled: each clip
    is tested exactly once, so it equals the sum of the per-fold matrices.
    """
    table = fold_table(folds, metrics_dir)
    pooled = pooled_predictions(folds, plots_dir)
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(pooled["actual"]) - set(index) | set(pooled["predicted"]) - set(index))
    if unknown:
        raise AggregateError(f"fold predictions name classes {unknown} not in data.classes; re-run evaluate")
    matrix = confusion(pooled["actual"].map(index).to_numpy(), pooled["predicted"].map(index).to_numpy(),
                       len(classes))
    summary: dict[str, Any] = {"folds": len(folds), "clips": int(table["n"].sum())}
    summary.update({m: mean_std(table[m]) for m in SUMMARISED if m in table.columns})
    summary["pooled_accuracy"] = float(np.trace(matrix) / max(matrix.sum(), 1))
    write_json(out_dir / "metrics.json", summary)
    write_csv(out_dir / "folds.csv", table)
    write_csv(out_dir / "confusion.csv", pooled)
    write_csv(out_dir / "confusion_matrix.csv",
              pd.DataFrame(matrix, columns=classes).assign(actual=classes).set_index("actual").reset_index())
    plot_confusion(matrix, classes, out_dir / "confusion.png",
                   f"summed over {len(folds)} folds ({summary['clips']} clips)", normalized=False)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """One line per figure: ``accuracy 0.645 ± 0.021``."""
    return "\n".join(f"{m}: {summary[m]['mean']:.4f} ± {summary[m]['std']:.4f} over {summary['folds']} folds"
                     for m in SUMMARISED if m in summary)
