"""Evaluate a trained model on cached features: metrics JSON, DVC confusion data and PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fretlab.io import read_json, write_csv, write_json
from fretlab.tasks.metrics import classification_metrics, confusion, regression_metrics
from fretlab.tasks.plots import plot_confusion, plot_error_heatmap, plot_per_class_f1, plot_scatter_grid
from fretlab.tasks.targets import Standardizer, TargetSpec


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


def _classification_block(split: str, spec: TargetSpec, pred: np.ndarray, codes: np.ndarray, ids: list[str],
                          plots_dir: Path, suffix: str) -> dict[str, Any]:
    classes = list(spec.classes)
    names = np.asarray(classes)
    write_csv(plots_dir / "confusion" / f"{split}{suffix}.csv",
              pd.DataFrame({"id": ids, "actual": names[codes], "predicted": names[pred]}))
    plot_confusion(confusion(codes, pred, len(classes), normalize=True), classes,
                   plots_dir / "figures" / f"confusion_{split}{suffix}_normalized.png",
                   f"{split}: {spec.name} (row-normalized)", normalized=True)
    return classification_metrics(codes, pred, classes)


def regression_report(true: np.ndarray, pred: np.ndarray, scale: tuple[float, float]) -> dict[str, Any]:
    """A regression target's metrics on its own scale and on the standardized one (train mean and std)."""
    mean, std = scale
    return {**regression_metrics(true, pred),
            "standardized": {k: v for k, v in regression_metrics((true - mean) / std, (pred - mean) / std).items()
                             if k in ("mse", "rmse", "mae")}}


def evaluate_targets(
    split: str, out: torch.Tensor, y: np.ndarray, valid: np.ndarray, ids: list[str], specs: list[TargetSpec],
    scaler: Standardizer, report_scale: Standardizer, metrics_dir: Path, plots_dir: Path,
) -> dict[str, Any]:
    """Score every target of a multi-target task on its valid rows; write metrics, DVC plot data and PNGs.

    ``y`` holds raw values (class codes, regression values on their own scale); model outputs for
    regression targets are mapped back with ``scaler``. ``report_scale`` (the train split's mean and std)
    gives the standardized figures, so targets on different scales compare. The aggregate is the mean
    over regression targets of their MSE, raw and standardized, and each target's share of the raw sum.
    """
    metrics: dict[str, Any] = {}
    rows, scatter, grid = [], [], {}
    first_classifier = True
    for j, spec in enumerate(specs):
        mask = valid[:, j]
        kept = [i for i, keep in zip(ids, mask, strict=True) if keep]
        values = spec.slice(out)[torch.from_numpy(mask)].double().numpy()
        if spec.is_classification:
            suffix = "" if first_classifier else f"_{spec.name}"
            first_classifier = False
            metrics[spec.name] = _classification_block(split, spec, values.argmax(1), y[mask, j].astype(np.int64),
                                                       kept, plots_dir, suffix)
            continue
        pred = values[:, 0] * scaler.std[j] + scaler.mean[j]
        true = y[mask, j]
        report = regression_report(true, pred, (report_scale.mean[j], report_scale.std[j]))
        metrics[spec.name] = report
        rows.append({"target": spec.name, "mse_standardized": report["standardized"]["mse"], "r2": report["r2"],
                     "mse": report["mse"]})
        mean, std = report_scale.mean[j], report_scale.std[j]
        scatter += [{"id": i, "target": spec.name, "true": float(t), "predicted": float(p),
                     "true_standardized": float((t - mean) / std), "predicted_standardized": float((p - mean) / std)}
                    for i, t, p in zip(kept, true, pred, strict=True)]
        grid[spec.name] = (true, pred)
    if rows:
        table = pd.DataFrame(rows)
        raw_total = float(table["mse"].sum())
        table["raw_mse_share"] = table["mse"] / raw_total if raw_total > 0 else np.nan
        metrics["aggregate"] = {
            "mse": float(table["mse"].mean()), "mse_standardized": float(table["mse_standardized"].mean()),
            "r2_mean": float(table["r2"].mean()),
            "raw_mse_share": {r.target: float(r.raw_mse_share) for r in table.itertuples()},
        }
        write_csv(plots_dir / "targets" / f"{split}.csv", table)
        write_csv(plots_dir / "scatter" / f"{split}.csv", pd.DataFrame(scatter))
        figures = plots_dir / "figures"
        plot_scatter_grid(grid, figures / f"scatter_{split}.png", f"{split}: predicted vs true")
        heat = table[["mse_standardized", "raw_mse_share"]].to_numpy(dtype=float)
        heat = np.column_stack([heat, 1 - table["r2"].to_numpy(dtype=float)])
        plot_error_heatmap(heat, table["target"].tolist(), ["standardized MSE", "share of raw MSE", "1 - R²"],
                           figures / f"error_heatmap_{split}.png", f"{split}: error per target")
    metrics = _json_safe(metrics)
    write_json(metrics_dir / f"{split}.json", metrics)
    return metrics


def _json_safe(value: Any) -> Any:
    """NaN (a target with no valid row in the split) as null: DVC reads metrics files as strict JSON."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
