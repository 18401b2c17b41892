"""Classification and regression metrics (scikit-learn) in the JSON shape every model reports."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    r2_score,
    recall_score,
)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Macro-averaged F1 over all ``n_classes`` (absent classes count as 0)."""
    return float(f1_score(y_true, y_pred, labels=list(range(n_classes)), average="macro", zero_division=0))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro-F1 and per-class precision/recall/F1/support."""
    labels = list(range(len(classes)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": macro_f1(y_true, y_pred, len(classes)),
        "n": len(y_true),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(classes)
        },
    }


def present_class_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """:func:`classification_metrics` with macro-F1 and balanced accuracy over the classes present in ``y_true``.

    For an evaluation set that cannot hold every class (the check set has no dead notes): an absent
    class would otherwise add a 0 to macro-F1 however good the model is. Per-class figures still
    cover every class, so predictions of an absent class show up as its precision (0) and in the
    confusion matrix.
    """
    with warnings.catch_warnings():
        # sklearn's balanced accuracy warns about predicted classes absent from y_true (or a single class):
        # exactly this set's case, and the figure is replaced below by the one over the present classes
        warnings.simplefilter("ignore", UserWarning)
        metrics = classification_metrics(y_true, y_pred, classes)
    present = sorted({int(v) for v in np.unique(y_true)})
    if present:
        metrics["macro_f1"] = float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))
        # balanced accuracy is the mean recall over the true classes
        metrics["balanced_accuracy"] = float(recall_score(y_true, y_pred, labels=present, average="macro",
                                                          zero_division=0))
    metrics["classes_present"] = [classes[i] for i in present]
    metrics["classes_absent"] = [c for i, c in enumerate(classes) if i not in present]
    return metrics


def group_accuracy(y_true: np.ndarray, y_pred: np.ndarray, groups: list[str]) -> dict[str, dict[str, Any]]:
    """Accuracy and row count per group (e.g. instrument), groups in sorted order."""
    names = np.asarray(groups)
    out = {}
    for group in sorted(set(groups)):
        rows = names == group
        out[group] = {"accuracy": float(accuracy_score(y_true[rows], y_pred[rows])), "n": int(rows.sum())}
    return out


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, normalize: bool = False) -> np.ndarray:
    """Confusion matrix (rows: true class); row-normalized when ``normalize``."""
    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes)), normalize="true" if normalize else None)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE and R² (scikit-learn) of one target; R² is NaN with fewer than two rows."""
    if len(y_true) == 0:
        return {"mse": float("nan"), "rmse": float("nan"), "mae": float("nan"), "r2": float("nan"), "n": 0}
    mse = float(mean_squared_error(y_true, y_pred))
    return {"mse": mse, "rmse": float(np.sqrt(mse)), "mae": float(mean_absolute_error(y_true, y_pred)),
            "r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"), "n": len(y_true)}
