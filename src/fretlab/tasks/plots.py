"""matplotlib figures: confusion matrices (counts and row-normalized), per-class F1, per-group accuracy."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures go to files only
import matplotlib.pyplot as plt
import numpy as np

from fretlab.io import atomic_path


def _save(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def plot_confusion(matrix: np.ndarray, classes: list[str], path: Path, title: str, normalized: bool) -> None:
    """Heatmap with class names on both axes and each cell's value."""
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    im = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1 if normalized else None)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, f"{v:.2f}" if normalized else f"{int(v)}", ha="center", va="center",
                color="white" if v > threshold else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    _save(fig, path)


def plot_per_class_f1(f1: dict[str, float], path: Path, title: str) -> None:
    """Bar chart of F1 per class."""
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    names = list(f1)
    ax.bar(names, [f1[n] for n in names], color="tab:blue")
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    ax.set_title(title)
    for i, n in enumerate(names):
        ax.text(i, f1[n] + 0.02, f"{f1[n]:.3f}", ha="center")
    _save(fig, path)


def plot_group_accuracy(accuracy: dict[str, float], path: Path, title: str) -> None:
    """Horizontal bars of accuracy per group (one row per instrument: many names fit)."""
    names = list(accuracy)
    fig, ax = plt.subplots(figsize=(6.0, 1.0 + 0.28 * max(1, len(names))))
    ax.barh(range(len(names)), [accuracy[n] for n in names], color="tab:blue")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()  # first group at the top, as in the metrics JSON
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.set_title(title)
    for i, n in enumerate(names):
        ax.text(min(accuracy[n] + 0.01, 0.9), i, f"{accuracy[n]:.2f}", va="center", fontsize=7)
    _save(fig, path)


def plot_scatter_grid(frame: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    """Predicted against true value, one panel per regression target, with the identity line."""
    names = list(frame)
    cols = min(4, max(1, len(names)))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        true, pred = frame[name]
        ax.scatter(true, pred, s=8, alpha=0.6)
        lo, hi = (float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))) if len(true) else (0, 1)
        ax.plot([lo, hi], [lo, hi], color="gray", lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("true", fontsize=8)
        ax.set_ylabel("predicted", fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def plot_error_heatmap(values: np.ndarray, rows: list[str], cols: list[str], path: Path, title: str,
                       fmt: str = "{:.2f}", cmap: str = "Reds") -> None:
    """A targets × columns heatmap (e.g. standardized MSE per model), each cell labelled with its value."""
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(cols), 0.8 + 0.4 * len(rows)))
    finite = values[np.isfinite(values)]
    im = ax.imshow(values, cmap=cmap, aspect="auto", vmin=0, vmax=float(finite.max()) if finite.size else 1)
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    threshold = float(finite.max()) / 2 if finite.size else 0
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, fmt.format(v) if np.isfinite(v) else "–", ha="center", va="center", fontsize=8,
                color="white" if np.isfinite(v) and v > threshold else "black")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    _save(fig, path)
